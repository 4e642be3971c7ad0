terraform {
  required_version = "~> 1.11"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 3.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }

  # The state lives in a GCS bucket named at init time:
  #   terraform init -backend-config=bucket=STATE_BUCKET
  # It holds the URL token in clear text, so the bucket must be private.
  backend "gcs" {
    prefix = "injector"
  }
}
