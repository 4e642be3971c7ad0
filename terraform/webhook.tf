# The same webhooks, rules and selectors as `injector webhook-config`
# (injector/cluster/webhook_config.py); tests/test_terraform.py compares the two.
locals {
  namespace_label = "${local.annotation_prefix}/injection"
  pod_label       = "${local.annotation_prefix}/inject"
  webhook_url     = sensitive("${google_cloudfunctions2_function.injector.service_config[0].uri}/${local.webhook_token}")
}

resource "kubernetes_mutating_webhook_configuration_v1" "injector" {
  metadata {
    name = var.webhook_name
  }

  # Namespaces labelled <prefix>/injection=enabled: every Pod not labelled <prefix>/inject=false.
  webhook {
    name                      = "namespace.webhook.${local.annotation_prefix}"
    admission_review_versions = ["v1", "v1beta1"]
    side_effects              = "None"
    failure_policy            = var.failure_policy
    timeout_seconds           = var.webhook_timeout_seconds
    reinvocation_policy       = "IfNeeded"
    match_policy              = "Equivalent"

    client_config {
      url = local.webhook_url
    }

    rule {
      operations   = ["CREATE"]
      api_groups   = [""]
      api_versions = ["v1"]
      resources    = ["pods"]
      scope        = "Namespaced"
    }

    namespace_selector {
      match_expressions {
        key      = local.namespace_label
        operator = "In"
        values   = ["enabled"]
      }
      match_expressions {
        key      = "kubernetes.io/metadata.name"
        operator = "NotIn"
        values   = local.excluded_namespaces
      }
    }

    object_selector {
      match_expressions {
        key      = local.pod_label
        operator = "NotIn"
        values   = ["false"]
      }
    }
  }

  # Namespaces without that label: only Pods labelled <prefix>/inject=true.
  webhook {
    name                      = "object.webhook.${local.annotation_prefix}"
    admission_review_versions = ["v1", "v1beta1"]
    side_effects              = "None"
    failure_policy            = var.failure_policy
    timeout_seconds           = var.webhook_timeout_seconds
    reinvocation_policy       = "IfNeeded"
    match_policy              = "Equivalent"

    client_config {
      url = local.webhook_url
    }

    rule {
      operations   = ["CREATE"]
      api_groups   = [""]
      api_versions = ["v1"]
      resources    = ["pods"]
      scope        = "Namespaced"
    }

    namespace_selector {
      match_expressions {
        key      = local.namespace_label
        operator = "DoesNotExist"
      }
      match_expressions {
        key      = "kubernetes.io/metadata.name"
        operator = "NotIn"
        values   = local.excluded_namespaces
      }
    }

    object_selector {
      match_expressions {
        key      = local.pod_label
        operator = "In"
        values   = ["true"]
      }
    }
  }

  lifecycle {
    precondition {
      condition     = startswith(google_cloudfunctions2_function.injector.service_config[0].uri, "https://")
      error_message = "The API server calls webhooks over https only."
    }
  }

  # Calls start as soon as this exists: the function must take them and know the token, and their
  # request log entries, which carry the token, must already be excluded.
  depends_on = [
    google_cloud_run_v2_service_iam_member.public_invoker,
    google_secret_manager_secret_version.tokens,
    google_logging_project_exclusion.request_logs,
  ]
}
