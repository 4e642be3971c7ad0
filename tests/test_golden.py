"""Golden tests over a corpus of realistic Pods (tests/data/pods), plus what must hold for each.

The expected outcome of each Pod is stored in tests/data/golden/<name>.json. After an
intended change, rewrite them with UPDATE_GOLDEN=1 and review the diff.
"""

import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from admission_data import DATA, apply_patch
from injection_checks import assert_valid_and_user_objects_intact
from ruamel.yaml import YAML

from injector.core.config import parse_config
from injector.core.engine import Injector, Outcome
from injector.core.keys import INIT_CONTAINER, INIT_CONTAINER_IPV6, PROXY_CONTAINER
from injector.kube.qos import GUARANTEED, qos_class

CORPUS = sorted((DATA / "pods").glob("*.yaml"))
GOLDEN = DATA / "golden"


def load_pod(path: Path) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(YAML(typ="safe", pure=True).load(path.read_text())))


def large_pod() -> dict[str, Any]:
    """Thousands of env vars over several containers, as Istio's slow case had."""
    env = [{"name": f"SETTING_{i:04d}", "value": f"value-{i}"} for i in range(3000)]
    containers = [
        {"name": f"app-{n}", "image": "registry.example.com/big/app:1.0", "env": env}
        for n in range(5)
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "big-", "labels": {"app": "big"}},
        "spec": {"containers": containers},
    }


CASES = {path.stem: (lambda path=path: load_pod(path)) for path in CORPUS}
CASES["large-env"] = large_pod


def evaluate(injector: Injector, pod: dict[str, Any]) -> Outcome:
    return injector.evaluate(pod, (pod.get("metadata") or {}).get("namespace") or "shop")


def as_record(outcome: Outcome) -> dict[str, Any]:
    return {
        "decision": outcome.decision,
        "reason": str(outcome.reason),
        "detail": outcome.detail,
        "warnings": list(outcome.warnings),
        "overrides": dict(outcome.overrides),
        "notes": list(outcome.notes),
        "operations": list(outcome.operations),
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_outcome_matches_golden(injector: Injector, name: str) -> None:
    actual = as_record(evaluate(injector, CASES[name]()))
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        golden.write_bytes(orjson.dumps(actual, option=orjson.OPT_INDENT_2) + b"\n")
    assert actual == orjson.loads(golden.read_bytes())


INJECTED = [
    "bare-metadata",
    "cronjob-report-classic",
    "daemonset-agent",
    "deployment-web",
    "existing-init-containers",
    "existing-native-sidecar",
    "generate-name-only",
    "guaranteed-qos",
    "ipv4-only",
    "job-batch",
    "large-env",
    "named-ports",
    "overrides",
    "probes",
    "security-contexts",
    "statefulset-db",
    "user-volumes",
]


def test_exactly_these_corpus_pods_are_injected(injector: Injector) -> None:
    injected = [n for n in sorted(CASES) if evaluate(injector, CASES[n]()).decision == "injected"]
    assert injected == INJECTED


@pytest.mark.parametrize("name", INJECTED)
def test_injected_pod_is_valid_keeps_what_the_user_wrote_and_is_injected_once(
    injector: Injector, name: str
) -> None:
    pod = CASES[name]()
    outcome = evaluate(injector, pod)
    assert outcome.decision == "injected"
    patched = apply_patch(pod, outcome.operations)
    assert_valid_and_user_objects_intact(pod, patched)

    second = evaluate(injector, patched)
    assert (second.decision, second.reason, second.operations) == (
        "skipped",
        "already-injected",
        (),
    )


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod["spec"]
    return next(
        c for c in (*spec.get("initContainers", []), *spec["containers"]) if c["name"] == name
    )


def test_classic_proxy_runs_with_the_apps_and_its_rules_follow_user_init_containers(
    injector: Injector,
) -> None:
    pod = CASES["cronjob-report-classic"]()
    patched = apply_patch(pod, evaluate(injector, pod).operations)
    init_names = [c["name"] for c in patched["spec"]["initContainers"]]
    assert init_names == ["fetch-template", INIT_CONTAINER, INIT_CONTAINER_IPV6]
    assert [c["name"] for c in patched["spec"]["containers"]] == ["report", PROXY_CONTAINER]
    proxy = _container(patched, PROXY_CONTAINER)
    assert "restartPolicy" not in proxy
    assert "startupProbe" not in proxy
    assert "lifecycle" not in proxy


def test_native_proxy_holds_the_app_with_a_startup_probe(injector: Injector) -> None:
    pod = CASES["job-batch"]()
    patched = apply_patch(pod, evaluate(injector, pod).operations)
    proxy = _container(patched, PROXY_CONTAINER)
    assert proxy["restartPolicy"] == "Always"
    assert proxy["startupProbe"]["httpGet"] == {"path": "/healthz/ready", "port": 15021}
    assert patched["spec"]["restartPolicy"] == "Never"


def test_overrides_reach_the_proxy_and_the_rules(injector: Injector) -> None:
    pod = CASES["overrides"]()
    outcome = evaluate(injector, pod)
    assert len(outcome.overrides) == 7
    patched = apply_patch(pod, outcome.operations)
    proxy = _container(patched, PROXY_CONTAINER)
    assert proxy["image"] == "registry.example.com/mesh/proxy:1.33.0-debug"
    assert proxy["resources"] == {
        "requests": {"cpu": "250m", "memory": "128Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    assert proxy["args"][proxy["args"].index("--log-level") + 1] == "debug"
    rules = patched["metadata"]["annotations"]["injector.dev/iptables-rules"].split("\n")
    assert "-A MESH_INBOUND -p tcp --dport 8080 -j MESH_IN_REDIRECT" in rules
    assert "-A MESH_INBOUND -p tcp -j MESH_IN_REDIRECT" not in rules
    assert "-A MESH_OUTPUT -p tcp --dport 5432 -j RETURN" in rules
    assert "-A MESH_OUTPUT -p tcp --dport 6379 -j RETURN" in rules
    assert "-4 -A MESH_OUTPUT -d 10.96.0.0/12 -j RETURN" in rules
    assert "-4 -A MESH_OUTPUT -d 169.254.169.254/32 -j RETURN" in rules
    assert "-6 -A MESH_OUTPUT -d fd00:10:96::/112 -j RETURN" in rules


def test_each_captured_family_gets_its_init_container_reading_the_same_rules(
    injector: Injector,
) -> None:
    pod = CASES["deployment-web"]()
    patched = apply_patch(pod, evaluate(injector, pod).operations)
    init = patched["spec"]["initContainers"]
    assert [c["name"] for c in init[:3]] == [INIT_CONTAINER, INIT_CONTAINER_IPV6, PROXY_CONTAINER]
    assert init[0]["command"] == ["iptables-restore", "/etc/mesh/iptables/rules"]
    assert init[1]["command"] == ["ip6tables-nft-restore", "/etc/mesh/iptables/rules"]
    assert {k: v for k, v in init[0].items() if k not in ("name", "command")} == {
        k: v for k, v in init[1].items() if k not in ("name", "command")
    }


def test_ipv6_left_uncaptured_gets_no_ipv6_init_container_or_rules(injector: Injector) -> None:
    pod = CASES["ipv4-only"]()
    outcome = evaluate(injector, pod)
    assert outcome.overrides["injector.dev/ip-families"] == "IPv4"
    patched = apply_patch(pod, outcome.operations)
    init_names = [c["name"] for c in patched["spec"]["initContainers"]]
    assert init_names == [INIT_CONTAINER, PROXY_CONTAINER]
    rules = patched["metadata"]["annotations"]["injector.dev/iptables-rules"].split("\n")
    assert "-4 -A MESH_OUTPUT -d 10.96.0.0/12 -j RETURN" in rules
    assert not [rule for rule in rules if rule.startswith("-6 ")]


def test_statefulset_port_is_left_out_of_inbound_capture(injector: Injector) -> None:
    pod = CASES["statefulset-db"]()
    patched = apply_patch(pod, evaluate(injector, pod).operations)
    rules = patched["metadata"]["annotations"]["injector.dev/iptables-rules"].split("\n")
    assert "-A MESH_INBOUND -p tcp --dport 5432 -j RETURN" in rules


def test_label_opt_out_wins_over_annotation_opt_in(injector: Injector) -> None:
    outcome = evaluate(injector, CASES["opted-out-label"]())
    assert (outcome.decision, outcome.reason) == ("skipped", "opted-out")
    assert outcome.detail == "label injector.dev/inject=false"


def test_invalid_annotation_denies_naming_annotation_value_and_form(injector: Injector) -> None:
    outcome = evaluate(injector, CASES["invalid-annotation"]())
    assert (outcome.decision, outcome.reason) == ("denied", "invalid-annotation")
    assert "injector.dev/proxy-cpu-limit='two cores'" in outcome.detail
    assert "Kubernetes quantity such as 100m" in outcome.detail


def test_port_conflict_skips_with_a_warning_naming_container_and_port(injector: Injector) -> None:
    outcome = evaluate(injector, CASES["port-conflict"]())
    assert (outcome.decision, outcome.reason, outcome.operations) == (
        "skipped",
        "port-conflict",
        (),
    )
    assert outcome.warnings == (
        "the proxy was not injected: container app uses port 15021, "
        "which the proxy needs for health",
    )


def test_classic_custom_proxy_held_until_ready_goes_first_with_a_post_start_wait() -> None:
    config = parse_config(
        "nativeSidecar: false\n"
        "proxy: {kind: custom, image: example.com/mesh/proxy:1, waitCommand: [proxy, wait-ready]}\n"
    )
    pod = CASES["existing-init-containers"]()
    outcome = Injector(config).evaluate(pod, "shop")
    patched = apply_patch(pod, outcome.operations)
    assert_valid_and_user_objects_intact(pod, patched)
    assert [c["name"] for c in patched["spec"]["containers"]] == [PROXY_CONTAINER, "catalog"]
    assert [c["name"] for c in patched["spec"]["initContainers"]] == [
        "wait-for-db",
        "migrate",
        INIT_CONTAINER,
        INIT_CONTAINER_IPV6,
    ]
    proxy = patched["spec"]["containers"][0]
    assert proxy["lifecycle"] == {"postStart": {"exec": {"command": ["proxy", "wait-ready"]}}}
    annotations = patched["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/default-container"] == "catalog"


def test_the_guaranteed_pod_stays_guaranteed(injector: Injector) -> None:
    pod = CASES["guaranteed-qos"]()
    assert qos_class(pod["spec"]) == GUARANTEED
    patched = apply_patch(pod, evaluate(injector, pod).operations)
    assert qos_class(patched["spec"]) == GUARANTEED


@pytest.mark.parametrize(
    ("name", "reason"), [("windows-pod", "windows-pod"), ("mirror-pod", "mirror-pod")]
)
def test_windows_and_mirror_pods_are_skipped_with_their_reason(
    injector: Injector, name: str, reason: str
) -> None:
    outcome = evaluate(injector, CASES[name]())
    assert (outcome.decision, outcome.reason, outcome.operations) == ("skipped", reason, ())
