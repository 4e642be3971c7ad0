variable "project_id" {
  description = "The GCP project that hosts the function, its secrets and its monitoring."
  type        = string

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID: 6 to 30 lowercase letters, digits or hyphens."
  }
}

variable "region" {
  description = "The region of the function and of its source bucket, e.g. europe-west1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a GCP region such as europe-west1."
  }
}

variable "cluster_name" {
  description = "The GKE cluster that gets the MutatingWebhookConfiguration."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$", var.cluster_name))
    error_message = "cluster_name must be a GKE cluster name: up to 40 lowercase letters, digits or hyphens."
  }
}

variable "cluster_location" {
  description = "The GKE cluster's location: a region (regional cluster) or a zone (zonal cluster)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+(-[a-z])?$", var.cluster_location))
    error_message = "cluster_location must be a GCP region or zone, such as europe-west1 or europe-west1-b."
  }
}

variable "function_name" {
  description = "The function's name; it also names its Cloud Run service, service account, bucket, secrets and metrics."
  type        = string
  default     = "mesh-injector"

  validation {
    # Lowercase so that the Cloud Run service has the same name; at most 26 characters so that
    # "<name>-run" fits a service account ID.
    condition     = can(regex("^[a-z][-a-z0-9]{0,24}[a-z0-9]$", var.function_name))
    error_message = "function_name must be 2 to 26 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "injector_config_file" {
  description = "The injector's configuration file (YAML or JSON), relative to the directory Terraform runs in. Its annotationPrefix and excludedNamespaces also shape the webhook's selectors."
  type        = string
  default     = "injector-config.yaml"

  validation {
    condition     = fileexists(var.injector_config_file)
    error_message = "injector_config_file must name an existing file."
  }
}

variable "webhook_name" {
  description = "metadata.name of the MutatingWebhookConfiguration."
  type        = string
  default     = "mesh-injector"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.webhook_name))
    error_message = "webhook_name must be a DNS subdomain: lowercase letters, digits, '-' and '.'."
  }
}

variable "failure_policy" {
  description = "What the API server does when the webhook cannot be reached or times out: Fail rejects the Pod, Ignore creates it without the proxy. See README.md."
  type        = string
  default     = "Fail"

  validation {
    condition     = contains(["Fail", "Ignore"], var.failure_policy)
    error_message = "failure_policy must be Fail or Ignore."
  }
}

variable "webhook_timeout_seconds" {
  description = "How long the API server waits for a review (timeoutSeconds), 1 to 30."
  type        = number
  default     = 10

  validation {
    condition     = var.webhook_timeout_seconds >= 1 && var.webhook_timeout_seconds <= 30 && floor(var.webhook_timeout_seconds) == var.webhook_timeout_seconds
    error_message = "webhook_timeout_seconds must be a whole number from 1 to 30."
  }
}

variable "extra_excluded_namespaces" {
  description = "Namespaces the webhook never reviews, besides the configuration's excludedNamespaces (by default kube-system, kube-public and kube-node-lease)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for namespace in var.extra_excluded_namespaces : can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", namespace))])
    error_message = "extra_excluded_namespaces must hold namespace names (DNS labels)."
  }
}

variable "min_instances" {
  description = "Instances kept warm. Keep at least 1: a cold start can take longer than the webhook's timeout."
  type        = number
  default     = 1

  validation {
    condition     = var.min_instances >= 0 && floor(var.min_instances) == var.min_instances
    error_message = "min_instances must be a whole number, 0 or more."
  }
}

variable "max_instances" {
  description = "The most instances the function scales out to."
  type        = number
  default     = 10

  validation {
    condition     = var.max_instances >= 1 && var.max_instances >= var.min_instances && floor(var.max_instances) == var.max_instances
    error_message = "max_instances must be a whole number, at least 1 and at least min_instances."
  }
}

variable "refresh_seconds" {
  description = "How long the function uses a loaded configuration or token set before reading Secret Manager again (INJECTOR_REFRESH_SECONDS)."
  type        = number
  default     = 60

  validation {
    condition     = var.refresh_seconds >= 1 && var.refresh_seconds <= 86400
    error_message = "refresh_seconds must be from 1 to 86400."
  }
}

variable "on_error" {
  description = "The function's answer when it cannot review a Pod (INJECTOR_ON_ERROR): deny rejects the Pod, allow admits it without the proxy."
  type        = string
  default     = "deny"

  validation {
    condition     = contains(["deny", "allow"], var.on_error)
    error_message = "on_error must be deny or allow."
  }
}

variable "token_rotation" {
  description = "The URL token's generation. Raise it by one to rotate the token without downtime; see README.md."
  type        = number
  default     = 1

  validation {
    condition     = var.token_rotation >= 1 && floor(var.token_rotation) == var.token_rotation
    error_message = "token_rotation must be a whole number, 1 or more."
  }
}

variable "build_service_account" {
  description = "Email of the service account that builds the function; null uses the project's default build service account."
  type        = string
  default     = null

  validation {
    condition     = var.build_service_account == null || can(regex("^[^@]+@[^@]+\\.iam\\.gserviceaccount\\.com$", var.build_service_account))
    error_message = "build_service_account must be a service account email (NAME@PROJECT.iam.gserviceaccount.com) or null."
  }
}

variable "keep_request_logs" {
  description = "Keep Cloud Run's request log of the function (false: a logging exclusion drops it). Each entry holds the request URL, so the URL token, in httpRequest.requestUrl: everyone who may read the project's logs (roles/logging.viewer, roles/viewer and above, and the readers of any sink that exports them) can then call the webhook, for the log bucket's retention (30 days in _Default). The function logs each review itself; the metrics and the alert do not need this log."
  type        = bool
  default     = false
}

variable "alert_notification_channels" {
  description = "Monitoring notification channels (projects/P/notificationChannels/ID) told when the injector logs errors or answers 5xx."
  type        = list(string)
  default     = []
}

variable "alert_error_threshold" {
  description = "The alert fires when, within 5 minutes, the injector logs more errors than this, or answers more 5xx responses than this."
  type        = number
  default     = 0

  validation {
    condition     = var.alert_error_threshold >= 0
    error_message = "alert_error_threshold must be 0 or more."
  }
}
