# The injector's configuration: stored whole in Secret Manager (secrets.tf), and read here for the
# two fields the webhook's selectors depend on, with InjectorConfig's defaults
# (injector/core/config.py), so that the selectors are the ones `injector webhook-config --config
# FILE` prints.
locals {
  injector_config_text = file(var.injector_config_file)
  injector_config      = yamldecode(local.injector_config_text)

  annotation_prefix = try(
    local.injector_config.annotationPrefix,
    local.injector_config.annotation_prefix,
    "injector.dev",
  )
  excluded_namespaces = distinct(concat(
    try(
      local.injector_config.excludedNamespaces,
      local.injector_config.excluded_namespaces,
      ["kube-system", "kube-public", "kube-node-lease"],
    ),
    var.extra_excluded_namespaces,
  ))
}
