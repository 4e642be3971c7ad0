provider "google" {
  project = var.project_id
  region  = var.region
}

# The cluster whose API server calls the webhook; Terraform talks to it with the caller's own
# Google credentials, so it needs permission to manage MutatingWebhookConfigurations there.
data "google_container_cluster" "target" {
  project  = var.project_id
  name     = var.cluster_name
  location = var.cluster_location
}

data "google_client_config" "current" {}

provider "kubernetes" {
  host                   = "https://${data.google_container_cluster.target.endpoint}"
  token                  = data.google_client_config.current.access_token
  cluster_ca_certificate = base64decode(data.google_container_cluster.target.master_auth[0].cluster_ca_certificate)
}
