resource "google_cloudfunctions2_function" "injector" {
  # checkov:skip=CKV_GCP_124: the GKE control plane calls from outside the project's networks, so internal-only ingress would refuse it; the URL token guards the function
  project     = var.project_id
  name        = var.function_name
  location    = var.region
  description = "Sidecar proxy injector: the cluster's mutating admission webhook."

  build_config {
    runtime         = "python312"
    entry_point     = "mutate"
    service_account = var.build_service_account == null ? null : "projects/${var.project_id}/serviceAccounts/${var.build_service_account}"

    source {
      storage_source {
        bucket = google_storage_bucket.function_source.name
        object = google_storage_bucket_object.function_source.name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.runtime.email
    min_instance_count    = var.min_instances
    max_instance_count    = var.max_instances
    # A review takes milliseconds, so one instance serves many at once; that needs a whole vCPU.
    available_cpu                    = "1"
    available_memory                 = "512Mi"
    max_instance_request_concurrency = 16
    # A little longer than the API server waits, so that a slow review ends on its own terms.
    timeout_seconds = var.webhook_timeout_seconds + 5
    # The GKE control plane calls from outside the project's networks.
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true

    environment_variables = {
      # versions/latest: a new secret version takes effect within refresh_seconds, without a redeploy.
      INJECTOR_CONFIG_SECRET   = "${google_secret_manager_secret.injector_config.id}/versions/latest"
      INJECTOR_TOKENS_SECRET   = "${google_secret_manager_secret.tokens.id}/versions/latest"
      INJECTOR_REFRESH_SECONDS = var.refresh_seconds
      INJECTOR_ON_ERROR        = var.on_error
    }
  }

  # The first instance reads both secrets as it starts.
  depends_on = [
    google_secret_manager_secret_version.injector_config,
    google_secret_manager_secret_version.tokens,
    google_secret_manager_secret_iam_member.runtime_reads,
  ]
}

# The API server cannot present Google IAM credentials when it calls a webhook, so the function's
# Cloud Run service takes unauthenticated calls. The token in the URL path is the guard: without a
# valid one, every path answers 404. (google_cloudfunctions2_function_iam_member rejects this role.)
resource "google_cloud_run_v2_service_iam_member" "public_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.injector.service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}
