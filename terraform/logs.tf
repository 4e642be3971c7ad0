# Which log entries are the function's. A 2nd gen function runs as a Cloud Run service, and
# everything about it is logged under that service's revisions (resource type cloud_run_revision):
#   - Cloud Run's request log, run.googleapis.com%2Frequests: one entry per call, written by the
#     platform, with the request URL (scheme, host, path and query) in httpRequest.requestUrl, so
#     with the URL token;
#   - the function's own lines: the JSON lines its code writes to stdout, read into jsonPayload,
#     one per review; and the platform's system entries about its instances.
locals {
  run_service_name = reverse(split("/", google_cloudfunctions2_function.injector.service_config[0].service))[0]
  run_service_logs = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.run_service_name}\""
  request_log_name = "projects/${var.project_id}/logs/run.googleapis.com%2Frequests"

  request_logs  = "${local.run_service_logs} AND logName=\"${local.request_log_name}\""
  function_logs = "${local.run_service_logs} AND NOT logName=\"${local.request_log_name}\""
  review_logs   = "${local.function_logs} AND jsonPayload.message=\"admission review\""
}

# The token must not land in Cloud Logging: the request log of this service, and only that log of
# only this service, is not stored. A project exclusion is an exclusion filter of the project's
# _Default sink, added without taking over that sink (see README.md, "Where the token can be read").
resource "google_logging_project_exclusion" "request_logs" {
  count = var.keep_request_logs ? 0 : 1

  project     = var.project_id
  name        = "${var.function_name}-request-logs"
  description = "Cloud Run request log of the ${var.function_name} function: its request URLs carry the webhook's token. The function logs each review itself."
  filter      = local.request_logs

  depends_on = [google_project_service.required]
}
