# Log-based metrics read only the function's own lines (logs.tf), never Cloud Run's request log,
# so they count the same whether keep_request_logs keeps that log or not.
resource "google_logging_metric" "reviews" {
  project     = var.project_id
  name        = "${var.function_name}/reviews"
  description = "Admission reviews, by decision (injected, skipped, denied) and reason."
  filter      = local.review_logs

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    labels {
      key         = "decision"
      value_type  = "STRING"
      description = "injected, skipped or denied"
    }
    labels {
      key         = "reason"
      value_type  = "STRING"
      description = "Why, e.g. injected, opted-out, excluded-namespace or internal-error"
    }
  }

  label_extractors = {
    decision = "EXTRACT(jsonPayload.decision)"
    reason   = "EXTRACT(jsonPayload.reason)"
  }
}

resource "google_logging_metric" "errors" {
  project     = var.project_id
  name        = "${var.function_name}/errors"
  description = "Error entries of the function and its instances: failed reviews, failed configuration or token loads, crashes."
  filter      = "${local.function_logs} AND severity>=ERROR"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }
}

resource "google_logging_metric" "review_latency" {
  project         = var.project_id
  name            = "${var.function_name}/review-latency"
  description     = "Time the injector spent on each review, in milliseconds, by decision."
  filter          = local.review_logs
  value_extractor = "EXTRACT(jsonPayload.latency_ms)"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "ms"

    labels {
      key         = "decision"
      value_type  = "STRING"
      description = "injected, skipped or denied"
    }
  }

  label_extractors = {
    decision = "EXTRACT(jsonPayload.decision)"
  }

  # 0.05 ms to about 52 s.
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 20
      growth_factor      = 2
      scale              = 0.05
    }
  }
}

resource "google_monitoring_alert_policy" "errors" {
  project               = var.project_id
  display_name          = "${var.function_name}: injector errors"
  combiner              = "OR"
  notification_channels = var.alert_notification_channels

  conditions {
    display_name = "More than ${var.alert_error_threshold} errors in 5 minutes"

    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.errors.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_error_threshold
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  # 5xx answers, counted by Cloud Run itself: no request log entry is needed.
  conditions {
    display_name = "More than ${var.alert_error_threshold} 5xx answers in 5 minutes"

    condition_threshold {
      filter          = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${local.run_service_name}\" AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = \"5xx\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_error_threshold
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      The injector function ${var.function_name} logged errors or answered 5xx. With failurePolicy
      Fail, Pods that the webhook selects may be failing to start. Read its logs:
      `${local.function_logs} AND severity>=ERROR`.
      Reviews by decision and reason are in the metric logging.googleapis.com/user/${google_logging_metric.reviews.name}.
    EOT
  }
}
