# The function's own identity: it may read its two secrets (secrets.tf) and nothing else.
resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "${var.function_name}-run"
  display_name = "${var.function_name} runtime"
  description  = "Runs the injector function; reads its configuration and token secrets only."

  depends_on = [google_project_service.required]
}
