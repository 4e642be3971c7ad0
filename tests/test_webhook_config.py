"""`python -m injector webhook-config`: a MutatingWebhookConfiguration a cluster accepts."""

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes_schema import validate_object
from ruamel.yaml import YAML
from server import REPO

from injector.cluster.webhook_config import build_webhook_configuration
from injector.core.config import InjectorConfig


def run(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "injector", "webhook-config", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)


def test_printed_configuration_is_valid_and_complete(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    result = run(
        "--url",
        "https://10.0.0.5:8443/secret-path",
        "--ca-bundle",
        str(ca),
        "--exclude-namespace",
        "legacy",
        "--timeout",
        "5",
    )
    assert result.returncode == 0, result.stderr
    manifest = YAML(typ="safe", pure=True).load(result.stdout)
    validate_object(manifest)
    assert manifest["metadata"] == {"name": "mesh-injector"}
    by_name = {w["name"]: w for w in manifest["webhooks"]}
    assert set(by_name) == {"namespace.webhook.injector.dev", "object.webhook.injector.dev"}
    for webhook in by_name.values():
        assert webhook["clientConfig"] == {
            "url": "https://10.0.0.5:8443/secret-path",
            "caBundle": base64.b64encode(ca.read_bytes()).decode(),
        }
        assert webhook["rules"] == [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ]
        assert webhook["sideEffects"] == "None"
        assert webhook["admissionReviewVersions"] == ["v1", "v1beta1"]
        assert webhook["reinvocationPolicy"] == "IfNeeded"
        assert (webhook["failurePolicy"], webhook["timeoutSeconds"]) == ("Fail", 5)
        assert webhook["namespaceSelector"]["matchExpressions"][1] == {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["kube-system", "kube-public", "kube-node-lease", "legacy"],
        }
    namespace_hook = by_name["namespace.webhook.injector.dev"]
    assert namespace_hook["namespaceSelector"]["matchExpressions"][0] == {
        "key": "injector.dev/injection",
        "operator": "In",
        "values": ["enabled"],
    }
    assert namespace_hook["objectSelector"] == {
        "matchExpressions": [
            {"key": "injector.dev/inject", "operator": "NotIn", "values": ["false"]}
        ]
    }
    object_hook = by_name["object.webhook.injector.dev"]
    assert object_hook["namespaceSelector"]["matchExpressions"][0] == {
        "key": "injector.dev/injection",
        "operator": "DoesNotExist",
    }
    assert object_hook["objectSelector"] == {
        "matchExpressions": [{"key": "injector.dev/inject", "operator": "In", "values": ["true"]}]
    }


def test_selectors_follow_the_configured_prefix(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("annotationPrefix: mesh.example.com\nexcludedNamespaces: [ops]\n")
    result = run("--url", "https://injector.example.com/t", "--config", str(config))
    manifest = YAML(typ="safe", pure=True).load(result.stdout)
    hook = manifest["webhooks"][0]
    assert hook["name"] == "namespace.webhook.mesh.example.com"
    assert hook["namespaceSelector"]["matchExpressions"][0]["key"] == "mesh.example.com/injection"
    assert hook["namespaceSelector"]["matchExpressions"][1]["values"] == ["ops"]
    assert hook["objectSelector"]["matchExpressions"][0]["key"] == "mesh.example.com/inject"


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--url", "http://127.0.0.1:8080/"], "the webhook URL must be https://", 2),
        (["--url", "https://host/path?x=1"], "may not carry a query, a fragment or user info", 2),
        (["--url", "https://user@host/path"], "may not carry a query, a fragment or user info", 2),
        (["--url", "https://host/", "--timeout", "31"], "timeoutSeconds must be from 1 to 30", 2),
        (["--url", "https://host/", "--ca-bundle", "/nonexistent/ca.crt"], "No such file", 2),
        (["--url", "https://host/", "--config", "/nonexistent.yaml"], "No such file", 1),
    ],
)
def test_invalid_input_exits_with_a_message_and_no_traceback(args, message, code) -> None:
    """An option's value the command cannot use is a usage error (2); a configuration that
    cannot be used, invalid input (1)."""
    result = run(*args)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_url_is_a_usage_error() -> None:
    result = run()
    assert result.returncode == 2
    assert "--url" in result.stderr


def test_webhook_names_are_qualified_for_a_single_label_prefix() -> None:
    config = InjectorConfig(annotation_prefix="mesh")
    manifest = build_webhook_configuration(config, "https://host/t")
    assert [w["name"] for w in manifest["webhooks"]] == [
        "namespace.webhook.mesh",
        "object.webhook.mesh",
    ]
