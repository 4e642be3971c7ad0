locals {
  required_apis = [
    "artifactregistry.googleapis.com", # the function's container image
    "cloudbuild.googleapis.com",       # builds the function from its source
    "cloudfunctions.googleapis.com",
    "container.googleapis.com", # reads the GKE cluster
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "run.googleapis.com", # a 2nd gen function runs as a Cloud Run service
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
}

resource "google_project_service" "required" {
  for_each = toset(local.required_apis)

  project = var.project_id
  service = each.value
  # Other workloads in the project may use these APIs too.
  disable_on_destroy = false
}
