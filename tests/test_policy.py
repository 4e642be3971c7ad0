"""Who is injected, in which order the rules apply, and the reason each decision gives."""

from typing import Any

import pytest

from injector.core.config import InjectorConfig, parse_config
from injector.core.engine import Injector


def pod(labels: dict | None = None, annotations: dict | None = None, **spec: Any) -> dict:
    metadata: dict[str, Any] = {"name": "p"}
    if labels is not None:
        metadata["labels"] = labels
    if annotations is not None:
        metadata["annotations"] = annotations
    containers = [{"name": "app", "image": "example.com/app:1"}]
    return {"metadata": metadata, "spec": {"containers": containers, **spec}}


def decide(config: InjectorConfig, p: dict, namespace: str = "shop") -> tuple[str, str, str]:
    outcome = Injector(config).evaluate(p, namespace)
    return outcome.decision, outcome.reason, outcome.detail


DEFAULT = InjectorConfig()
OPT_IN_ONLY = parse_config(
    """
    defaultPolicy: disabled
    neverInjectSelectors: [{matchLabels: {tier: infra}}]
    alwaysInjectSelectors:
      - matchExpressions: [{key: tier, operator: In, values: [infra, web]}]
    """
)


@pytest.mark.parametrize(
    ("config", "namespace", "the_pod", "expected"),
    [
        (DEFAULT, "shop", pod(), ("injected", "injected", "the default policy is enabled")),
        (
            DEFAULT,
            "kube-system",
            pod(labels={"injector.dev/inject": "true"}),
            ("skipped", "excluded-namespace", "namespace kube-system is excluded"),
        ),
        (
            DEFAULT,
            "shop",
            pod(labels={"injector.dev/inject": "true"}, hostNetwork=True),
            ("skipped", "host-network", "the Pod uses the node's network (hostNetwork: true)"),
        ),
        (
            DEFAULT,
            "shop",
            pod(annotations={"injector.dev/status": "{}"}),
            ("skipped", "already-injected", "the Pod already has the proxy"),
        ),
        (
            DEFAULT,
            "shop",
            pod(labels={"injector.dev/inject": "false"}),
            ("skipped", "opted-out", "label injector.dev/inject=false"),
        ),
        (
            DEFAULT,
            "shop",
            pod(annotations={"injector.dev/inject": "false"}),
            ("skipped", "opted-out", "annotation injector.dev/inject=false"),
        ),
        (
            DEFAULT,
            "shop",
            pod(
                labels={"injector.dev/inject": "true"}, annotations={"injector.dev/inject": "false"}
            ),
            ("injected", "injected", "label injector.dev/inject=true"),
        ),
        (
            OPT_IN_ONLY,
            "shop",
            pod(),
            (
                "skipped",
                "not-opted-in",
                "the default policy is disabled and the Pod did not opt in",
            ),
        ),
        (
            OPT_IN_ONLY,
            "shop",
            pod(annotations={"injector.dev/inject": "true"}),
            ("injected", "injected", "annotation injector.dev/inject=true"),
        ),
        (
            OPT_IN_ONLY,
            "shop",
            pod(labels={"tier": "infra"}),
            ("skipped", "never-inject-selector", "neverInjectSelectors[0] matches"),
        ),
        (
            OPT_IN_ONLY,
            "shop",
            pod(labels={"tier": "web"}),
            ("injected", "injected", "alwaysInjectSelectors[0] matches"),
        ),
        (
            OPT_IN_ONLY,
            "shop",
            pod(labels={"tier": "infra", "injector.dev/inject": "true"}),
            ("injected", "injected", "label injector.dev/inject=true"),
        ),
    ],
)
def test_decision_and_reason(config, namespace, the_pod, expected) -> None:
    assert decide(config, the_pod, namespace) == expected


@pytest.mark.parametrize("name", ["mesh-proxy", "mesh-init", "mesh-init-ipv6"])
def test_pod_carrying_the_proxy_by_name_counts_as_injected(name: str) -> None:
    p = pod()
    p["spec"]["initContainers"] = [{"name": name, "image": "example.com/x:1"}]
    assert decide(DEFAULT, p)[1] == "already-injected"


def test_invalid_inject_label_denies_naming_label_and_expected_values() -> None:
    decision, reason, detail = decide(DEFAULT, pod(labels={"injector.dev/inject": "yes"}))
    assert (decision, reason) == ("denied", "invalid-annotation")
    assert detail == "label injector.dev/inject='yes' is invalid: expected true or false"


def test_prefix_is_configurable() -> None:
    config = parse_config("annotationPrefix: mesh.example.com")
    assert decide(config, pod(labels={"mesh.example.com/inject": "false"}))[1] == "opted-out"
    assert decide(config, pod(labels={"injector.dev/inject": "false"}))[1] == "injected"
    outcome = Injector(config).evaluate(pod(), "shop")
    added = [op["path"] for op in outcome.operations]
    assert "/metadata/annotations" in added
    annotations = next(op["value"] for op in outcome.operations if op["path"] == added[-2])
    assert "mesh.example.com/status" in annotations


def test_excluded_namespaces_are_configurable() -> None:
    config = parse_config("excludedNamespaces: [legacy]")
    assert decide(config, pod(), "legacy")[1] == "excluded-namespace"
    assert decide(config, pod(), "kube-system")[1] == "injected"


def test_unknown_annotation_under_the_prefix_is_a_warning_not_a_denial() -> None:
    outcome = Injector(DEFAULT).evaluate(pod(annotations={"injector.dev/proxy-imgae": "x"}), "s")
    assert outcome.decision == "injected"
    assert outcome.warnings == (
        "annotation injector.dev/proxy-imgae is not known to the injector and was ignored",
    )


def test_a_denial_keeps_the_warning_about_an_unknown_annotation() -> None:
    annotations = {"injector.dev/proxy-memroy-limit": "1Gi", "injector.dev/log-level": "loud"}
    outcome = Injector(DEFAULT).evaluate(pod(annotations=annotations), "s")
    assert (outcome.decision, outcome.reason) == ("denied", "invalid-annotation")
    assert outcome.warnings == (
        "annotation injector.dev/proxy-memroy-limit is not known to the injector and was ignored",
    )


@pytest.mark.parametrize("value", ["true", "false", "on"])
def test_an_envoy_annotation_is_ignored_with_a_warning_for_a_custom_proxy(value: str) -> None:
    config = parse_config("proxy: {kind: custom, image: example.com/proxy:1}")
    annotations = {"injector.dev/http-detection": value}
    outcome = Injector(config).evaluate(pod(annotations=annotations), "s")
    assert (outcome.decision, outcome.overrides) == ("injected", {})
    assert outcome.warnings == (
        "annotation injector.dev/http-detection was ignored: it sets the proxy of kind envoy, and "
        "this injector's proxy is of kind custom, which owns its configuration",
    )
    assert outcome.operations == Injector(config).evaluate(pod(annotations={}), "s").operations


def test_an_envoy_annotation_applies_to_an_envoy_proxy() -> None:
    annotations = {"injector.dev/http-detection": "true"}
    outcome = Injector(DEFAULT).evaluate(pod(annotations=annotations), "s")
    assert (outcome.decision, outcome.overrides, outcome.warnings) == ("injected", annotations, ())
    assert "http_inspector" in str(outcome.operations)


@pytest.mark.parametrize(
    ("the_pod", "detail"),
    [
        ("not a pod", "the Pod must be a JSON object"),
        ({"spec": []}, "spec must be an object"),
        ({"spec": {}}, "spec.containers must list at least one container"),
        ({"spec": {"containers": [{"image": "x"}]}}, "spec.containers[0] must be an object with"),
        (
            {"spec": {"containers": [{"name": "a"}], "volumes": {"name": "v"}}},
            "spec.volumes must be a list",
        ),
        (
            {"metadata": {"labels": ["a"]}, "spec": {"containers": [{"name": "a"}]}},
            "metadata.labels must be an object",
        ),
    ],
)
def test_malformed_pod_is_skipped_with_a_warning(the_pod: Any, detail: str) -> None:
    outcome = Injector(DEFAULT).evaluate(the_pod, "shop")
    assert (outcome.decision, outcome.reason, outcome.operations) == (
        "skipped",
        "malformed-pod",
        (),
    )
    assert outcome.detail.startswith(detail)
    assert outcome.warnings[0].startswith("the proxy was not injected: the Pod is malformed")


@pytest.mark.parametrize(
    ("where", "item", "detail"),
    [
        ("volumes", {"name": "mesh-iptables", "emptyDir": {}}, "the volume mesh-iptables"),
        ("volumes", {"name": "mesh-proxy-tmp", "emptyDir": {}}, "the volume mesh-proxy-tmp"),
    ],
)
def test_name_the_injector_needs_already_taken_skips_with_a_warning(where, item, detail) -> None:
    p = pod()
    p["spec"][where] = [item]
    outcome = Injector(DEFAULT).evaluate(p, "shop")
    assert (outcome.decision, outcome.reason) == ("skipped", "name-conflict")
    assert detail in outcome.warnings[-1]


def test_annotation_or_label_the_injector_writes_already_set_skips() -> None:
    rules = Injector(DEFAULT).evaluate(pod(annotations={"injector.dev/iptables-rules": ""}), "s")
    assert (rules.reason, rules.detail) == (
        "name-conflict",
        "the Pod already has the annotation injector.dev/iptables-rules, which the injector adds",
    )
    label = Injector(DEFAULT).evaluate(pod(labels={"injector.dev/injected": "no"}), "s")
    assert label.reason == "name-conflict"


@pytest.mark.parametrize("port", [15000, 15001, 15006, 15021, 15090])
def test_every_proxy_port_in_use_by_the_pod_is_a_conflict(port: int) -> None:
    p = pod()
    p["spec"]["initContainers"] = [
        {"name": "setup", "image": "x:1", "ports": [{"containerPort": port}]}
    ]
    outcome = Injector(DEFAULT).evaluate(p, "shop")
    assert outcome.reason == "port-conflict"
    assert f"container setup uses port {port}" in outcome.warnings[0]
