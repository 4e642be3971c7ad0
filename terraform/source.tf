locals {
  repository_root = "${path.module}/.."
  # Exactly what the function runs: its entry point, its requirements and the injector package's
  # modules. An include list, so tests, caches and this directory can never slip in.
  function_source_files = setunion(
    ["main.py", "requirements.txt"],
    fileset(local.repository_root, "injector/**/*.py"),
  )
}

data "archive_file" "function_source" {
  type        = "zip"
  output_path = "${path.module}/build/function-source.zip"

  dynamic "source" {
    for_each = local.function_source_files
    content {
      content  = file("${local.repository_root}/${source.value}")
      filename = source.value
    }
  }
}

resource "google_storage_bucket" "function_source" {
  # checkov:skip=CKV_GCP_62: it holds only zips of this repository's code, read by the function's build; Cloud Audit Logs record access if wanted
  project                     = var.project_id
  name                        = "${var.project_id}-${var.function_name}-src"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Only build inputs, which the repository recreates.
  force_destroy = true

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.required]
}

resource "google_storage_bucket_object" "function_source" {
  # Named by its content: every code change is a new object, and so a new deployment.
  name   = "function-source-${data.archive_file.function_source.output_sha256}.zip"
  bucket = google_storage_bucket.function_source.name
  source = data.archive_file.function_source.output_path
}
