"""QoS classes computed as Kubernetes computes them, and a Guaranteed Pod staying Guaranteed.

The class of every Pod is computed before injection and after the patch is applied (with a real
JSON Patch implementation), the way Kubernetes does (`injector.kube.qos`, itself checked against
the cases of Kubernetes' own test of ComputePodQOS).
"""

from pathlib import Path
from typing import Any

import pytest
from admission_data import apply_patch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from injection_checks import assert_valid_and_user_objects_intact
from kubernetes_schema import InvalidPod, validate_pod
from ruamel.yaml import YAML

from injector.core.config import InjectorConfig, parse_config
from injector.core.engine import Injector, Outcome
from injector.core.keys import INIT_CONTAINER, PROXY_CONTAINER
from injector.kube.qos import (
    BEST_EFFORT,
    BURSTABLE,
    GUARANTEED,
    is_guaranteed,
    missing_limits,
    qos_class,
    requests_at_limits,
)


def resources(requests: tuple[str, str] = ("", ""), limits: tuple[str, str] = ("", "")) -> dict:
    """A container's resources from (cpu, memory) pairs, "" leaving one out."""
    result: dict[str, dict[str, str]] = {}
    for field, (cpu, memory) in (("requests", requests), ("limits", limits)):
        values = {name: value for name, value in (("cpu", cpu), ("memory", memory)) if value}
        if values:
            result[field] = values
    return result


def container(name: str, requests=("", ""), limits=("", "")) -> dict:
    return {"name": name, "image": "example.com/app:1", "resources": resources(requests, limits)}


def spec(*containers: dict, init: tuple[dict, ...] = (), pod: dict | None = None) -> dict:
    result: dict[str, Any] = {"containers": list(containers)}
    if init:
        result["initContainers"] = list(init)
    if pod is not None:
        result["resources"] = pod
    return result


G = ("100m", "100Mi")


# The cases of Kubernetes' TestComputePodQOS (pkg/apis/core/v1/helper/qos/qos_test.go).
@pytest.mark.parametrize(
    ("the_spec", "expected"),
    [
        (spec(container("g", G, G)), GUARANTEED),
        (spec(container("g1", G, G), container("g2", G, G)), GUARANTEED),
        (spec(container("b1"), container("b2")), BEST_EFFORT),
        (spec(container("b")), BEST_EFFORT),
        (spec(container("b"), container("u", ("1", ""), ("2", ""))), BURSTABLE),
        (spec(container("b"), container("g", ("10m", "100Mi"), ("10m", "100Mi"))), BURSTABLE),
        (spec(container("m", ("", "100Mi"), ("", "100Mi"))), BURSTABLE),
        (spec(container("n", ("100m", "100Mi"))), BURSTABLE),
        (spec(container("u", ("1", "100Mi"), ("2", "100Mi")), container("g", G, G)), BURSTABLE),
        (
            spec(container("u", G, ("200m", "200Mi")), container("unbounded", G)),
            BURSTABLE,
        ),
        (spec(container("u", ("10m", "100Mi"), ("100m", "200Mi"))), BURSTABLE),
        (spec(container("zero", ("0", "0"), ("100m", "200Mi"))), BURSTABLE),
        (
            spec(
                {
                    "name": "hugepages",
                    "resources": {
                        "requests": {"cpu": "0", "memory": "0", "hugepages-2Mi": "1Gi"},
                        "limits": {"cpu": "0", "memory": "0", "hugepages-2Mi": "1Gi"},
                    },
                }
            ),
            BEST_EFFORT,
        ),
        (
            spec(container("b"), init=(container("u", ("10m", "100Mi"), ("100m", "200Mi")),)),
            BURSTABLE,
        ),
        (
            spec(container("b"), pod=resources(("10m", "100Mi"), ("10m", "100Mi"))),
            GUARANTEED,
        ),
        (
            spec(
                container("u", ("3m", "10Mi"), ("5m", "20Mi")),
                pod=resources(("10m", "100Mi"), ("10m", "100Mi")),
            ),
            GUARANTEED,
        ),
        (
            spec(container("b"), pod=resources(("10m", "10Mi"), ("20m", "50Mi"))),
            BURSTABLE,
        ),
        (
            spec(
                container("g", ("5m", "10Mi"), ("5m", "10Mi")),
                pod=resources(("10m", "10Mi"), ("20m", "50Mi")),
            ),
            BURSTABLE,
        ),
        (
            spec(container("u", ("5m", "10Mi")), pod=resources(("10m", "10Mi"))),
            BURSTABLE,
        ),
        (
            spec(
                container("u", ("5m", "10Mi")),
                container("g", ("5m", "10Mi"), ("5m", "10Mi")),
                pod=resources(("10m", "10Mi"), ("5m", "")),
            ),
            BURSTABLE,
        ),
    ],
)
def test_the_class_is_the_one_kubernetes_computes(the_spec: dict, expected: str) -> None:
    assert qos_class(the_spec) == expected
    assert is_guaranteed(the_spec) == (expected == GUARANTEED)


@pytest.mark.parametrize(
    ("the_spec", "expected"),
    [
        # A limit without a request: the API server copies the limit to the request.
        (spec(container("limits-only", limits=G)), GUARANTEED),
        (spec(container("g", G, G), init=(container("limits-only", limits=G),)), GUARANTEED),
        (spec(container("g", G, G), init=(container("b"),)), BURSTABLE),
        (spec(container("half", ("", "100Mi"), G)), GUARANTEED),
        # Quantities compare by value, in any spelling; YAML numbers are quantities too.
        (spec(container("g", ("1", "1Gi"), ("1000m", "1073741824"))), GUARANTEED),
        (spec({"name": "n", "resources": {"limits": {"cpu": 2, "memory": 2.5e9}}}), GUARANTEED),
        # Pod-level limits without requests: requests default to the limits when no container
        # requests anything, else to what the containers request, sidecars counted alongside.
        (spec(container("b"), pod={"limits": {"cpu": "1", "memory": "1Gi"}}), GUARANTEED),
        (
            spec(container("u", ("100m", "")), pod={"limits": {"cpu": "1", "memory": "1Gi"}}),
            BURSTABLE,
        ),
    ],
)
def test_defaults_apply_as_the_api_server_applies_them(the_spec: dict, expected: str) -> None:
    assert qos_class(the_spec) == expected
    assert is_guaranteed(the_spec) == (expected == GUARANTEED)


@pytest.mark.parametrize(
    ("init_first", "init", "expected"),
    [
        # The init container runs beside the sidecar started before it: 500m + 500m, and the
        # app with the sidecar also need 1 CPU, the Pod's limit.
        (False, "500m", GUARANTEED),
        # Beside the sidecar, a 700m init container makes the peak 1.2 CPU, above the limit.
        (False, "700m", BURSTABLE),
        # Before the sidecar starts it runs alone: the peak stays the app with the sidecar.
        (True, "700m", GUARANTEED),
    ],
)
def test_pod_level_requests_default_to_the_sidecar_aware_aggregate(
    init_first: bool, init: str, expected: str
) -> None:
    sidecar = {**container("sidecar", ("500m", "")), "restartPolicy": "Always"}
    init_container = container("init", (init, ""))
    the_spec = spec(
        container("app", ("500m", "")),
        init=(init_container, sidecar) if init_first else (sidecar, init_container),
        pod={"limits": {"cpu": "1", "memory": "1Gi"}},
    )
    assert qos_class(the_spec) == expected


@pytest.mark.parametrize(
    ("the_resources", "message"),
    [
        ([], "spec.containers[0].resources must be an object"),
        ({"limits": ["cpu"]}, "spec.containers[0].resources.limits must be an object"),
        (
            {"limits": {"cpu": "two"}},
            "spec.containers[0].resources.limits.cpu: expected a non-negative Kubernetes quantity",
        ),
        ({"requests": {"memory": True}}, "spec.containers[0].resources.requests.memory must be"),
    ],
)
def test_resources_of_the_wrong_shape_are_named(the_resources: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        qos_class({"containers": [{"name": "app", "resources": the_resources}]})


def test_requests_are_raised_to_limits_and_missing_limits_are_named() -> None:
    assert requests_at_limits(
        {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": G_LIMITS}
    ) == {
        "requests": {"cpu": "100m", "memory": "100Mi"},
        "limits": G_LIMITS,
    }
    only_cpu = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "1"}}
    assert requests_at_limits(only_cpu)["requests"] == {"cpu": "1", "memory": "16Mi"}
    assert missing_limits(only_cpu) == ("memory",)
    assert missing_limits({"limits": {"cpu": "0", "memory": "1Gi"}}) == ("cpu",)
    assert missing_limits({}) == ("cpu", "memory")


G_LIMITS = {"cpu": "100m", "memory": "100Mi"}


# The engine: a Guaranteed Pod stays Guaranteed once injected.

REAL_WORLD = Path(__file__).parent / "data" / "real-world"
CLASSIC_HELD = parse_config(
    "nativeSidecar: false\n"
    "proxy: {kind: custom, image: example.com/mesh/proxy:1, waitCommand: [proxy, wait-ready]}\n"
)
CLASSIC = {
    "injector.dev/native-sidecar": "false",
    "injector.dev/hold-application-until-proxy-ready": "false",
}


def load(name: str) -> dict[str, Any]:
    return YAML(typ="safe", pure=True).load((REAL_WORLD / name).read_text())


def pod(the_spec: dict, annotations: dict | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "p", "annotations": dict(annotations or {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": the_spec}


def injected(injector: Injector, the_pod: dict) -> tuple[Outcome, dict]:
    outcome = injector.evaluate(the_pod, "shop")
    assert outcome.decision == "injected", outcome
    patched = apply_patch(the_pod, outcome.operations)
    assert_valid_and_user_objects_intact(the_pod, patched)
    return outcome, patched


def injected_resources(patched: dict) -> dict[str, dict]:
    spec = patched["spec"]
    return {
        c["name"]: c.get("resources")
        for c in (*spec.get("initContainers", ()), *spec["containers"])
        if c["name"] in (INIT_CONTAINER, PROXY_CONTAINER)
    }


GUARANTEED_PODS = {
    "fixture": lambda: load("guaranteed-qos.yaml"),
    "limits only": lambda: pod(spec(container("app", limits=("1", "1Gi")))),
    "with init containers": lambda: pod(
        spec(
            container("app", ("2", "2Gi"), ("2", "2Gi")),
            init=(
                container("migrate", limits=("500m", "256Mi")),
                {**container("log-shipper", G, G), "restartPolicy": "Always"},
            ),
        )
    ),
}


@pytest.mark.parametrize("name", sorted(GUARANTEED_PODS))
@pytest.mark.parametrize(
    ("config", "annotations"),
    [(InjectorConfig(), {}), (InjectorConfig(), CLASSIC), (CLASSIC_HELD, {})],
    ids=["native", "classic", "classic-held"],
)
def test_a_guaranteed_pod_stays_guaranteed(
    name: str, config: InjectorConfig, annotations: dict
) -> None:
    the_pod = GUARANTEED_PODS[name]()
    the_pod["metadata"].setdefault("annotations", {}).update(annotations)
    assert qos_class(the_pod["spec"]) == GUARANTEED
    outcome, patched = injected(Injector(config), the_pod)
    assert qos_class(patched["spec"]) == GUARANTEED
    for resources in injected_resources(patched).values():
        assert resources["requests"] == resources["limits"]
    assert not [w for w in outcome.warnings if "QoS" in w]


def test_the_fixture_keeps_its_proxy_overrides_and_the_init_container_is_raised() -> None:
    _, patched = injected(Injector(InjectorConfig()), load("guaranteed-qos.yaml"))
    assert injected_resources(patched) == {
        INIT_CONTAINER: {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
        PROXY_CONTAINER: {
            "requests": {"cpu": "500m", "memory": "256Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
    }


DEFAULT_RESOURCES = {
    INIT_CONTAINER: {
        "requests": {"cpu": "10m", "memory": "16Mi"},
        "limits": {"cpu": "100m", "memory": "64Mi"},
    },
    PROXY_CONTAINER: {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    },
}


@pytest.mark.parametrize(
    ("the_spec", "before"),
    [
        (spec(container("app")), BEST_EFFORT),
        (spec(container("app", ("1", "1Gi"), ("2", "1Gi"))), BURSTABLE),
        (spec(container("app", G, G), container("sidecar", G)), BURSTABLE),
    ],
)
def test_other_pods_get_the_configured_resources(the_spec: dict, before: str) -> None:
    assert qos_class(the_spec) == before
    outcome, patched = injected(Injector(InjectorConfig()), pod(the_spec))
    assert injected_resources(patched) == DEFAULT_RESOURCES
    assert qos_class(patched["spec"]) == BURSTABLE
    assert not [w for w in outcome.warnings if "QoS" in w]


@pytest.mark.parametrize(
    ("pod_resources", "before"),
    [
        (resources(("1", "1Gi"), ("1", "1Gi")), GUARANTEED),
        (resources(("1", "1Gi"), ("2", "2Gi")), BURSTABLE),
        # As a template in a manifest, before the API server defaults the pod-level requests to
        # the limits: with requests from the injected containers they would default to those.
        ({"limits": {"cpu": "1", "memory": "1Gi"}}, GUARANTEED),
        ({"requests": {"cpu": "1", "memory": "1Gi"}}, BURSTABLE),
    ],
)
def test_with_pod_level_resources_the_injected_containers_share_them(
    pod_resources: dict, before: str
) -> None:
    the_spec = spec(container("app"), pod=pod_resources)
    assert qos_class(the_spec) == before
    outcome, patched = injected(Injector(InjectorConfig()), pod(the_spec))
    assert injected_resources(patched) == {INIT_CONTAINER: None, PROXY_CONTAINER: None}
    assert qos_class(patched["spec"]) == before
    assert outcome.warnings == ()


def test_with_the_configured_resources_such_a_pod_would_be_rejected() -> None:
    # What sharing avoids: the classic proxy's configured 2-CPU limit is above the Pod's 1 CPU.
    _, patched = injected(Injector(InjectorConfig()), pod(spec(container("app")), CLASSIC))
    patched["spec"]["resources"] = resources(("1", "1Gi"), ("1", "1Gi"))
    with pytest.raises(InvalidPod, match="mesh-proxy: cpu limit above the Pod's"):
        validate_pod(patched)


def test_only_the_resources_set_at_the_pod_level_are_shared() -> None:
    the_spec = spec(container("app"), pod={"limits": {"cpu": "4"}})
    _, patched = injected(Injector(InjectorConfig()), pod(the_spec))
    assert injected_resources(patched) == {
        INIT_CONTAINER: {"requests": {"memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        PROXY_CONTAINER: {"requests": {"memory": "128Mi"}, "limits": {"memory": "1Gi"}},
    }


@pytest.mark.parametrize(
    ("config", "annotations", "missing"),
    [
        (
            "proxy: {resources: {limits: {cpu: null, memory: null}}}",
            {},
            "mesh-proxy has no cpu limit to set its request to (set proxy.resources.limits.cpu in "
            "the configuration, or the annotation injector.dev/proxy-cpu-limit); mesh-proxy has "
            "no memory limit to set its request to (set proxy.resources.limits.memory in the "
            "configuration, or the annotation injector.dev/proxy-memory-limit)",
        ),
        (
            "init: {resources: {limits: {cpu: 100m, memory: null}}}",
            {},
            "mesh-init has no memory limit to set its request to "
            "(set init.resources.limits.memory in the configuration)",
        ),
        (
            "proxy: {resources: {limits: {cpu: '1', memory: null}}}",
            CLASSIC,
            "mesh-proxy has no memory limit to set its request to",
        ),
    ],
)
def test_where_guaranteed_is_impossible_a_warning_says_why(
    config: str, annotations: dict, missing: str
) -> None:
    the_pod = pod(spec(container("app", G, G)), annotations)
    outcome, patched = injected(Injector(parse_config(config)), the_pod)
    assert qos_class(patched["spec"]) == BURSTABLE
    [warning] = [w for w in outcome.warnings if "QoS" in w]
    assert warning.startswith(
        "the Pod's QoS class is Guaranteed, but once injected it is Burstable: " + missing
    )


def test_a_proxy_limit_given_by_annotation_makes_it_possible() -> None:
    config = parse_config("proxy: {resources: {limits: {cpu: null, memory: null}}}")
    annotations = {
        "injector.dev/proxy-cpu-limit": "300m",
        "injector.dev/proxy-memory-limit": "200Mi",
    }
    outcome, patched = injected(Injector(config), pod(spec(container("app", G, G)), annotations))
    assert qos_class(patched["spec"]) == GUARANTEED
    assert injected_resources(patched)[PROXY_CONTAINER]["requests"] == {
        "cpu": "300m",
        "memory": "200Mi",
    }
    assert outcome.warnings == ()


def test_guaranteed_and_other_pods_with_the_same_overrides_get_their_own_rendering() -> None:
    injector = Injector(InjectorConfig())
    guaranteed = pod(spec(container("app", G, G)), {"injector.dev/log-level": "debug"})
    burstable = pod(spec(container("app", G)), {"injector.dev/log-level": "debug"})
    for _ in range(2):
        for the_pod, expected in ((guaranteed, GUARANTEED), (burstable, BURSTABLE)):
            _, patched = injected(injector, the_pod)
            assert qos_class(patched["spec"]) == expected
            proxy = injected_resources(patched)[PROXY_CONTAINER]
            raised = proxy["requests"] == proxy["limits"]
            assert raised == (expected == GUARANTEED)


@pytest.mark.parametrize(
    ("the_resources", "detail"),
    [
        (
            {"limits": {"cpu": "1", "memory": "lots"}},
            "spec.containers[0].resources.limits.memory: expected a non-negative",
        ),
        ([], "spec.containers[0].resources must be an object"),
        ({"limits": "1Gi"}, "spec.containers[0].resources.limits must be an object"),
    ],
)
def test_malformed_resources_skip_the_pod_naming_the_field(the_resources, detail: str) -> None:
    the_pod = pod({"containers": [{"name": "app", "resources": the_resources}]})
    outcome = Injector(InjectorConfig()).evaluate(the_pod, "shop")
    assert (outcome.decision, outcome.reason) == ("skipped", "malformed-pod")
    assert outcome.detail.startswith(detail)


QUANTITIES = st.sampled_from(["", "0", "10m", "100m", "1", "2", "64Mi", "1Gi", "1073741824"])


@st.composite
def container_resources(draw: st.DrawFn) -> dict:
    return resources((draw(QUANTITIES), draw(QUANTITIES)), (draw(QUANTITIES), draw(QUANTITIES)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    app=st.lists(container_resources(), min_size=1, max_size=3),
    init=st.lists(container_resources(), max_size=2),
    pod_level=st.one_of(st.just({}), container_resources()),
    annotations=st.sampled_from([{}, CLASSIC]),
)
def test_injection_keeps_a_guaranteed_pod_guaranteed_and_pod_level_classes_as_they_are(
    injector: Injector, app: list[dict], init: list[dict], pod_level: dict, annotations: dict
) -> None:
    the_spec = spec(
        *({"name": f"app-{i}", "image": "x:1", "resources": r} for i, r in enumerate(app)),
        init=tuple(
            {"name": f"init-{i}", "image": "x:1", "resources": r} for i, r in enumerate(init)
        ),
        pod=pod_level or None,
    )
    before = qos_class(the_spec)
    assert is_guaranteed(the_spec) == (before == GUARANTEED)
    outcome = injector.evaluate(pod(the_spec, annotations), "shop")
    assert outcome.decision == "injected"
    after = qos_class(apply_patch(pod(the_spec, annotations), outcome.operations)["spec"])
    if pod_level:
        assert after == before
    else:
        assert after == (GUARANTEED if before == GUARANTEED else BURSTABLE)
