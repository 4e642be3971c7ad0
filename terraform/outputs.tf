output "function_uri" {
  description = "The function's HTTPS URI, without the token."
  value       = google_cloudfunctions2_function.injector.service_config[0].uri
}

output "webhook_url" {
  description = "The webhook URL with its token, for another cluster: injector webhook-config --url \"$(terraform output -raw webhook_url)\"."
  value       = local.webhook_url
  sensitive   = true
}

output "webhook_configuration_name" {
  description = "The MutatingWebhookConfiguration in the GKE cluster."
  value       = kubernetes_mutating_webhook_configuration_v1.injector.metadata[0].name
}

output "config_secret" {
  description = "The Secret Manager secret holding the injector's configuration."
  value       = google_secret_manager_secret.injector_config.id
}

output "tokens_secret" {
  description = "The Secret Manager secret holding the accepted URL tokens."
  value       = google_secret_manager_secret.tokens.id
}
