"""Pods the injector must leave alone or warn about, whatever they ask for: Windows Pods, mirror
Pods, Pods another mesh has injected, and classic proxies in Pods that run to completion; and
where those rules sit in the decision order."""

from typing import Any

import pytest
from admission_data import apply_patch
from injection_checks import assert_valid_and_user_objects_intact

from injector.core.config import InjectorConfig, parse_config
from injector.core.engine import Injector, Outcome
from injector.core.meshes import MESHES
from injector.kube.pod_security import BASELINE_ADDABLE_CAPABILITIES

DEFAULT = Injector(InjectorConfig())
CLASSIC = {
    "injector.dev/native-sidecar": "false",
    "injector.dev/hold-application-until-proxy-ready": "false",
}
BAD_OVERRIDE = {"injector.dev/proxy-cpu-limit": "two cores"}
BAD_INJECT_LABEL = {"injector.dev/inject": "yes"}


def pod(
    labels: dict | None = None,
    annotations: dict | None = None,
    init: list[dict] | None = None,
    containers: list[dict] | None = None,
    **spec: Any,
) -> dict:
    metadata: dict[str, Any] = {"name": "p", "labels": dict(labels or {})}
    metadata["annotations"] = dict(annotations or {})
    the_spec: dict[str, Any] = {
        "containers": containers or [{"name": "app", "image": "example.com/app:1"}],
        **spec,
    }
    if init:
        the_spec["initContainers"] = init
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": the_spec}


def evaluate(the_pod: dict, injector: Injector = DEFAULT) -> Outcome:
    return injector.evaluate(the_pod, "shop")


# Windows Pods: the injected containers are Linux containers.


def term(*expressions: tuple[str, str, list[str]]) -> dict:
    return {
        "matchExpressions": [
            {"key": key, "operator": operator, **({"values": values} if values else {})}
            for key, operator, values in expressions
        ]
    }


def required(*terms: dict) -> dict:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}
        }
    }


OS = "kubernetes.io/os"
NODE_NAME = {"key": "metadata.name", "operator": "In", "values": ["node-a"]}
WINDOWS = (OS, "In", ["windows"])
ZONE = ("topology.kubernetes.io/zone", "In", ["zone-a"])
BY_SPEC = "the Pod is a Windows Pod (spec.os.name: windows); the proxy is Linux-only"
BY_SELECTOR = "the Pod can only run on Windows nodes (its nodeSelector); the proxy is Linux-only"
BY_AFFINITY = (
    "the Pod can only run on Windows nodes (its required node affinity); the proxy is Linux-only"
)


@pytest.mark.parametrize(
    ("spec", "detail"),
    [
        ({"os": {"name": "windows"}}, BY_SPEC),
        ({"os": {"name": "windows"}, "nodeSelector": {OS: "windows"}}, BY_SPEC),
        ({"nodeSelector": {OS: "windows"}}, BY_SELECTOR),
        ({"nodeSelector": {"beta.kubernetes.io/os": "windows", "disk": "ssd"}}, BY_SELECTOR),
        ({"affinity": required(term(WINDOWS))}, BY_AFFINITY),
        ({"affinity": required(term(("beta.kubernetes.io/os", "In", ["windows"])))}, BY_AFFINITY),
        ({"affinity": required(term((OS, "NotIn", ["linux"])))}, BY_AFFINITY),
        # Expressions in a term are ANDed: one of them on the OS is enough.
        ({"affinity": required(term(ZONE, WINDOWS))}, BY_AFFINITY),
        (
            {
                "affinity": required(
                    term((OS, "In", ["linux", "windows"]), (OS, "NotIn", ["linux"]))
                )
            },
            BY_AFFINITY,
        ),
        # Terms are ORed: every term must rule Linux out; one matching no node at all does.
        ({"affinity": required(term(WINDOWS), term((OS, "NotIn", ["linux"])))}, BY_AFFINITY),
        ({"affinity": required(term(WINDOWS), term((OS, "DoesNotExist", [])))}, BY_AFFINITY),
        ({"affinity": required(term(WINDOWS), {})}, BY_AFFINITY),
        (
            {"affinity": required({**term(WINDOWS), "matchFields": [NODE_NAME]})},
            BY_AFFINITY,
        ),
    ],
)
def test_a_pod_that_runs_on_windows_is_skipped_with_its_reason(spec: dict, detail: str) -> None:
    outcome = evaluate(pod(**spec))
    assert (outcome.decision, outcome.reason, outcome.detail) == ("skipped", "windows-pod", detail)
    assert (outcome.operations, outcome.warnings) == ((), ())


@pytest.mark.parametrize(
    "spec",
    [
        {"os": {"name": "linux"}},
        {"nodeSelector": {OS: "linux"}},
        {"nodeSelector": {"disk": "ssd"}},
        {"affinity": required(term((OS, "In", ["linux", "windows"])))},
        {"affinity": required(term((OS, "NotIn", ["windows"])))},
        {"affinity": required(term((OS, "Exists", []))), "nodeSelector": {OS: "linux"}},
        # Terms are ORed: one term that admits Linux is enough.
        {"affinity": required(term(WINDOWS), term(ZONE))},
        {"affinity": required(term(WINDOWS), {"matchFields": [NODE_NAME]})},
        # Only required affinity constrains; a preference does not.
        {
            "affinity": {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 100, "preference": term(WINDOWS)}
                    ]
                }
            }
        },
        # Constraints no node can meet: not a Windows Pod (and never scheduled anyway).
        {"nodeSelector": {OS: "windows"}, "affinity": required(term((OS, "In", ["linux"])))},
        {"affinity": required(term((OS, "DoesNotExist", [])))},
    ],
)
def test_a_pod_that_can_run_on_linux_is_injected(spec: dict) -> None:
    the_pod = pod(**spec)
    outcome = evaluate(the_pod)
    assert (outcome.decision, outcome.reason) == ("injected", "injected")
    assert_valid_and_user_objects_intact(the_pod, apply_patch(the_pod, outcome.operations))


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"os": "windows"}, "spec.os must be an object"),
        ({"os": {"name": 1}}, "spec.os.name must be a string"),
        ({"nodeSelector": {OS: None}}, "spec.nodeSelector values must be strings"),
        ({"affinity": {"nodeAffinity": []}}, "spec.affinity.nodeAffinity must be an object"),
        (
            {"affinity": required("windows")},
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
            ".nodeSelectorTerms[0] must be an object",
        ),
        (
            {"affinity": required({"matchExpressions": [{"key": OS, "values": "windows"}]})},
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
            ".nodeSelectorTerms[0].matchExpressions[0].values must be a list",
        ),
        ({"restartPolicy": 0}, "spec.restartPolicy must be a string"),
    ],
)
def test_scheduling_fields_of_the_wrong_shape_make_a_malformed_pod(spec: dict, where: str) -> None:
    outcome = evaluate(pod(**spec))
    assert (outcome.decision, outcome.reason, outcome.detail) == ("skipped", "malformed-pod", where)


# Mirror Pods: the kubelet runs the static Pod from its file, never what a webhook adds.

MIRROR = {"kubernetes.io/config.mirror": "4f9c2d7e1a0b3c5d6e7f8091a2b3c4d5"}


def test_a_mirror_pod_is_skipped_with_its_reason() -> None:
    outcome = evaluate(pod(annotations={**MIRROR, "kubernetes.io/config.source": "file"}))
    assert (outcome.decision, outcome.reason, outcome.operations) == ("skipped", "mirror-pod", ())
    assert outcome.detail.startswith(
        "the Pod is the API server's mirror of a static Pod "
        "(annotation kubernetes.io/config.mirror)"
    )


@pytest.mark.parametrize(
    "annotations",
    [{"kubernetes.io/config.source": "file"}, {"kubernetes.io/config.hash": "4f9c"}],
)
def test_other_kubelet_annotations_alone_do_not_make_a_mirror_pod(annotations: dict) -> None:
    assert evaluate(pod(annotations=annotations)).reason == "injected"


# The decision order: what the Pod is comes before what it asks for.


@pytest.mark.parametrize(
    ("the_pod", "reason"),
    [
        (pod(labels=BAD_INJECT_LABEL, annotations=MIRROR), "mirror-pod"),
        (pod(annotations={**MIRROR, **BAD_OVERRIDE}), "mirror-pod"),
        (pod(labels={"injector.dev/inject": "true"}, annotations=MIRROR), "mirror-pod"),
        (pod(labels=BAD_INJECT_LABEL, os={"name": "windows"}), "windows-pod"),
        (pod(annotations=BAD_OVERRIDE, nodeSelector={OS: "windows"}), "windows-pod"),
        (pod(labels={"injector.dev/inject": "true"}, os={"name": "windows"}), "windows-pod"),
        (pod(annotations=MIRROR, os={"name": "windows"}, hostNetwork=True), "mirror-pod"),
        (pod(os={"name": "windows"}, hostNetwork=True), "windows-pod"),
    ],
)
def test_mirror_and_windows_pods_are_skipped_before_anything_could_deny_them(
    the_pod: dict, reason: str
) -> None:
    outcome = evaluate(the_pod)
    assert (outcome.decision, outcome.reason) == ("skipped", reason)


def test_an_excluded_namespace_still_comes_first() -> None:
    outcome = DEFAULT.evaluate(pod(annotations=MIRROR), "kube-system")
    assert outcome.reason == "excluded-namespace"


# Pods another mesh has injected.

PROXY_PORTS = [{"name": "http-envoy-prom", "containerPort": 15090}]


def mesh_variants() -> list[tuple[str, str, dict]]:
    """For each mesh, a Pod carrying one piece of its injection: each container, as an app
    container and as an init container (native sidecars are init containers), and each
    annotation and label alone."""
    variants = []
    for mesh in MESHES:
        for name in sorted(mesh.containers):
            container = {"name": name, "image": "example.com/other-mesh:1"}
            variants.append((mesh.name, f"container {name}", pod(containers=[APP, container])))
            variants.append((mesh.name, f"container {name}", pod(init=[container])))
        for key in mesh.annotations:
            variants.append((mesh.name, f"annotation {key}", pod(annotations={key: "x"})))
        for key in mesh.labels:
            variants.append((mesh.name, f"label {key}", pod(labels={key: "x"})))
    return variants


APP = {"name": "app", "image": "example.com/app:1"}


@pytest.mark.parametrize(("mesh", "evidence", "the_pod"), mesh_variants())
def test_a_pod_another_mesh_injected_is_skipped_naming_the_mesh(
    mesh: str, evidence: str, the_pod: dict
) -> None:
    outcome = evaluate(the_pod)
    detail = f"{mesh} already injected the Pod ({evidence})"
    assert (outcome.decision, outcome.reason, outcome.detail) == ("skipped", "other-mesh", detail)
    assert outcome.warnings == (
        f"the proxy was not injected: {detail}; two meshes' proxies in one Pod redirect each "
        "other's traffic",
    )
    assert outcome.operations == ()


def test_every_mesh_named_is_in_the_table() -> None:
    assert [mesh.name for mesh in MESHES] == [
        "Istio",
        "Linkerd",
        "Kuma",
        "Consul",
        "Open Service Mesh",
    ]


def test_a_fully_injected_istio_pod_lists_all_the_evidence() -> None:
    the_pod = pod(
        annotations={"sidecar.istio.io/status": "{}"},
        init=[{"name": "istio-init", "image": "istio/proxyv2:1.24.2"}],
        containers=[APP, {"name": "istio-proxy", "image": "istio/proxyv2:1.24.2"}],
    )
    assert evaluate(the_pod).detail == (
        "Istio already injected the Pod (container istio-proxy, container istio-init, "
        "annotation sidecar.istio.io/status)"
    )


@pytest.mark.parametrize(
    ("labels", "annotations"),
    [
        ({}, {"sidecar.istio.io/inject": "true"}),
        ({"sidecar.istio.io/inject": "true"}, {}),
        ({}, {"linkerd.io/inject": "enabled"}),
        ({"kuma.io/sidecar-injection": "enabled"}, {}),
        ({}, {"consul.hashicorp.com/connect-inject": "true"}),
        ({}, {"openservicemesh.io/sidecar-injection": "enabled"}),
        ({}, {"sidecar.istio.io/inject": "false", "linkerd.io/inject": "disabled"}),
    ],
)
def test_another_meshs_opt_in_or_opt_out_alone_is_ours_to_decide(
    labels: dict, annotations: dict
) -> None:
    assert evaluate(pod(labels, annotations)).reason == "injected"
    opted_out = pod({**labels, "injector.dev/inject": "false"}, annotations)
    assert evaluate(opted_out).reason == "opted-out"


def test_an_application_running_its_own_envoy_is_not_another_mesh() -> None:
    envoy = {"name": "envoy", "image": "envoyproxy/envoy:v1.32.3"}
    assert evaluate(pod(containers=[APP, envoy])).reason == "injected"


def test_a_proxy_port_in_the_application_is_still_a_port_conflict() -> None:
    app = {**APP, "ports": PROXY_PORTS}
    outcome = evaluate(pod(containers=[app]))
    assert outcome.reason == "port-conflict"
    assert outcome.detail == "container app uses port 15090, which the proxy needs for metrics"


def test_another_meshs_proxy_on_our_ports_is_another_mesh_not_a_port_conflict() -> None:
    istio_proxy = {"name": "istio-proxy", "image": "istio/proxyv2:1.24.2", "ports": PROXY_PORTS}
    outcome = evaluate(pod(containers=[APP, istio_proxy]))
    assert outcome.reason == "other-mesh"
    assert outcome.detail == "Istio already injected the Pod (container istio-proxy)"


LINKERD = {"linkerd.io/proxy-version": "stable-2.14.10"}


@pytest.mark.parametrize(
    ("the_pod", "injector", "reason"),
    [
        # The Pod's own choice and the selectors decide first: no warning for a Pod that was
        # not going to be injected anyway.
        (pod({"injector.dev/inject": "false"}, LINKERD), DEFAULT, "opted-out"),
        (
            pod(annotations=LINKERD),
            Injector(parse_config("defaultPolicy: disabled")),
            "not-opted-in",
        ),
        # Before the override annotations are read: an invalid one does not deny the Pod.
        (pod(annotations={**LINKERD, **BAD_OVERRIDE}), DEFAULT, "other-mesh"),
        (pod({"injector.dev/inject": "true"}, LINKERD), DEFAULT, "other-mesh"),
        # Our own proxy already there: a second review returns nothing, as always.
        (pod(annotations={**LINKERD, "injector.dev/status": "{}"}), DEFAULT, "already-injected"),
    ],
)
def test_where_another_mesh_sits_in_the_decision_order(
    the_pod: dict, injector: Injector, reason: str
) -> None:
    outcome = evaluate(the_pod, injector)
    assert (outcome.decision, outcome.reason) == ("skipped", reason)
    assert bool(outcome.warnings) == (reason == "other-mesh")


# A classic proxy in a Pod that runs to completion.

HELD_CLASSIC = Injector(
    parse_config(
        "nativeSidecar: false\n"
        "proxy: {kind: custom, image: example.com/mesh/proxy:1, waitCommand: [proxy, wait]}"
    )
)


@pytest.mark.parametrize(
    ("restart_policy", "annotations", "injector", "warned"),
    [
        ("Never", CLASSIC, DEFAULT, True),
        ("OnFailure", CLASSIC, DEFAULT, True),
        ("Never", {}, HELD_CLASSIC, True),
        ("Always", CLASSIC, DEFAULT, False),
        (None, CLASSIC, DEFAULT, False),
        ("Never", {}, DEFAULT, False),
        ("OnFailure", {"injector.dev/native-sidecar": "true"}, HELD_CLASSIC, False),
    ],
)
def test_a_classic_proxy_in_a_pod_that_runs_to_completion_gets_a_warning(
    restart_policy: str | None, annotations: dict, injector: Injector, warned: bool
) -> None:
    spec = {} if restart_policy is None else {"restartPolicy": restart_policy}
    outcome = evaluate(pod(annotations=annotations, **spec), injector)
    assert outcome.decision == "injected"
    expected = (
        f"the proxy runs as a classic container in a Pod with restartPolicy: {restart_policy}, "
        "so the Pod never completes: the proxy keeps running after the application exits; a "
        'native sidecar (injector.dev/native-sidecar: "true", Kubernetes 1.29 or later) does '
        "not have this problem, as it stops once the application containers have exited"
    )
    assert outcome.warnings == ((expected,) if warned else ())


def test_a_skipped_pod_gets_no_run_to_completion_warning() -> None:
    the_pod = pod({"injector.dev/inject": "false"}, CLASSIC, restartPolicy="Never")
    assert evaluate(the_pod).warnings == ()


# Pod Security: what an injected Pod needs, said with every injection.


def test_every_injected_pod_carries_the_pod_security_note() -> None:
    outcome = evaluate(pod())
    patched = apply_patch(pod(), outcome.operations)
    added = {
        container["name"]: capability
        for container in patched["spec"]["initContainers"]
        for capability in container["securityContext"].get("capabilities", {}).get("add", ())
        if capability not in BASELINE_ADDABLE_CAPABILITIES
    }
    assert set(added) == {"mesh-init", "mesh-init-ipv6"}
    assert outcome.notes == (
        "mesh-init and mesh-init-ipv6 add NET_ADMIN and NET_RAW, "
        "which the Pod Security Standards baseline and "
        "restricted both forbid: in a namespace that enforces either "
        "(pod-security.kubernetes.io/enforce), the API server rejects the injected Pod. Inject "
        "only where the namespace enforces privileged (or is exempt in the PodSecurity "
        "admission configuration), or opt the Pod out with the label "
        'injector.dev/inject: "false"',
    )
    assert evaluate(pod({"injector.dev/inject": "false"})).notes == ()
