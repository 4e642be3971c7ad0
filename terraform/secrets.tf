resource "google_secret_manager_secret" "injector_config" {
  project   = var.project_id
  secret_id = "${var.function_name}-config"

  replication {
    auto {}
  }

  depends_on = [google_project_service.required]
}

resource "google_secret_manager_secret_version" "injector_config" {
  secret      = google_secret_manager_secret.injector_config.id
  secret_data = local.injector_config_text

  lifecycle {
    # A changed payload replaces the version: the new one must exist before the old one goes, or a
    # starting instance could find no version at all.
    create_before_destroy = true

    precondition {
      condition     = can(keys(local.injector_config))
      error_message = "The injector configuration file must hold a mapping of fields (an empty one is {})."
    }
  }
}

# The URL tokens: see token_rotation.tf.
resource "random_password" "token" {
  for_each = local.token_slot_rotations

  # 48 characters from [A-Za-z0-9], within the function's token form (16-256 of [A-Za-z0-9_-]).
  length  = 48
  special = false

  keepers = {
    rotation = tostring(each.value)
  }
}

locals {
  webhook_token  = random_password.token[local.webhook_token_slot].result
  tokens_payload = join("\n", [for slot in local.token_slots : random_password.token[slot].result])
}

resource "google_secret_manager_secret" "tokens" {
  project   = var.project_id
  secret_id = "${var.function_name}-tokens"

  replication {
    auto {}
  }

  depends_on = [google_project_service.required]
}

resource "google_secret_manager_secret_version" "tokens" {
  secret      = google_secret_manager_secret.tokens.id
  secret_data = local.tokens_payload

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_secret_manager_secret_iam_member" "runtime_reads" {
  for_each = {
    config = google_secret_manager_secret.injector_config.secret_id
    tokens = google_secret_manager_secret.tokens.secret_id
  }

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runtime.email}"
}
