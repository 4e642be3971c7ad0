"""A sidecar proxy injector for Kubernetes service meshes: a mutating admission webhook.

Subpackages by concern, each importing only from those listed before it:

- `injector.errors`: the one root of every error the injector names.
- `injector.kube`: Kubernetes vocabulary (names, quantities, selectors, JSON Patch, YAML, QoS
  classes, scheduling on an operating system, Pod Security Standards).
- `injector.core`: the engine: configuration, policy, per-Pod settings, rendering, the iptables
  ruleset, the status record; one Pod in, an outcome out.
- `injector.service`: the webhook: AdmissionReview, the HTTP contract, the Cloud Function
  adapter, configuration and token sources, logs, the local server.
- `injector.manifests`: the engine offline, on manifest files: inject, uninject, explain.
- `injector.cluster`: a development CA and the MutatingWebhookConfiguration.
- `injector.cli`: the command line.
"""
