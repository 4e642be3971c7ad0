"""The MutatingWebhookConfiguration that sends Pod CREATEs to the injector.

Two webhooks with disjoint selectors, so a Pod is reviewed at most once per pass:
- namespaces labelled `<namespace label>=enabled`: every Pod not labelled `<prefix>/inject=false`;
- namespaces without that label: only Pods labelled `<prefix>/inject=true`.
Both leave out the excluded namespaces. The Terraform in terraform/ builds the same selectors.
"""

import base64
from typing import Any
from urllib.parse import urlsplit

from injector.core.config import InjectorConfig
from injector.core.keys import Keys
from injector.errors import InvalidArgument

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
DEFAULT_NAME = "mesh-injector"


def namespace_label(config: InjectorConfig) -> str:
    """The namespace label whose value `enabled` opts a whole namespace in."""
    return f"{config.annotation_prefix}/injection"


def check_webhook_url(url: str) -> str:
    """The API server accepts an https URL with a path, but no query, fragment or user info."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidArgument(f"the webhook URL must be https://host[:port][/path], got {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidArgument("the webhook URL may not carry a query, a fragment or user info")
    return url


def build_webhook_configuration(
    config: InjectorConfig,
    url: str,
    *,
    ca_bundle_pem: bytes | None = None,
    failure_policy: str = "Fail",
    timeout_seconds: int = 10,
    extra_excluded_namespaces: tuple[str, ...] = (),
    name: str = DEFAULT_NAME,
) -> dict[str, Any]:
    if failure_policy not in ("Fail", "Ignore"):
        raise InvalidArgument("failurePolicy must be Fail or Ignore")
    if not 1 <= timeout_seconds <= 30:
        raise InvalidArgument("timeoutSeconds must be from 1 to 30")
    client_config: dict[str, Any] = {"url": check_webhook_url(url)}
    if ca_bundle_pem:
        client_config["caBundle"] = base64.b64encode(ca_bundle_pem).decode()
    excluded = list(dict.fromkeys((*config.excluded_namespaces, *extra_excluded_namespaces)))
    not_excluded = {"key": NAMESPACE_NAME_LABEL, "operator": "NotIn", "values": excluded}
    ns_label = namespace_label(config)
    inject_label = Keys(config.annotation_prefix).inject
    common = {
        "clientConfig": client_config,
        "rules": [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ],
        "admissionReviewVersions": ["v1", "v1beta1"],
        "sideEffects": "None",
        "failurePolicy": failure_policy,
        "timeoutSeconds": timeout_seconds,
        "reinvocationPolicy": "IfNeeded",
        "matchPolicy": "Equivalent",
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": f"namespace.webhook.{config.annotation_prefix}",
                **common,
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": ns_label, "operator": "In", "values": ["enabled"]},
                        not_excluded,
                    ]
                },
                "objectSelector": {
                    "matchExpressions": [
                        {"key": inject_label, "operator": "NotIn", "values": ["false"]}
                    ]
                },
            },
            {
                "name": f"object.webhook.{config.annotation_prefix}",
                **common,
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": ns_label, "operator": "DoesNotExist"},
                        not_excluded,
                    ]
                },
                "objectSelector": {
                    "matchExpressions": [
                        {"key": inject_label, "operator": "In", "values": ["true"]}
                    ]
                },
            },
        ],
    }
