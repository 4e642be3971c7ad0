"""Properties over generated Pods: the patch applies, the Pod stays valid, and nothing of the
user's changes; a second review returns no patch; nothing the Pod holds crashes the engine."""

from typing import Any

from admission_data import apply_patch
from envoy_validation import validate_injected_proxy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from injection_checks import assert_valid_and_user_objects_intact
from kubernetes_schema import validate_pod

from injector.core.engine import Injector
from injector.core.keys import IPTABLES_VOLUME, PROXY_TMP_VOLUME
from injector.core.settings import OVERRIDES

names = st.from_regex(r"[a-z]([a-z0-9-]{0,12}[a-z0-9])?", fullmatch=True)
label_values = st.from_regex(r"([a-z0-9]([a-z0-9._-]{0,10}[a-z0-9])?)?", fullmatch=True)
label_keys = st.sampled_from(
    ["app", "tier", "app.kubernetes.io/name", "team.example.com/owner", "injector.dev/other"]
)
ports = st.integers(min_value=1, max_value=65535)
SAFE_ANNOTATIONS = {
    "injector.dev/proxy-image": "registry.example.com/mesh/proxy:2.0",
    "injector.dev/proxy-cpu-request": "50m",
    "injector.dev/proxy-memory-request": "64Mi",
    "injector.dev/log-level": "warning",
    "injector.dev/exclude-outbound-ports": "5432",
    "injector.dev/exclude-inbound-ports": "22,2222",
    "injector.dev/include-inbound-ports": "*",
    "injector.dev/exclude-outbound-cidrs": "10.0.0.0/8",
    "injector.dev/native-sidecar": "true",
    "injector.dev/hold-application-until-proxy-ready": "false",
    "prometheus.io/scrape": "true",
    "example.com/owner": "team/a",
}


@st.composite
def containers(draw: st.DrawFn, name: str, volume_names: list[str], native: bool) -> dict:
    container: dict[str, Any] = {"name": name, "image": "registry.example.com/app:1.0"}
    if draw(st.booleans()):
        numbers = draw(st.lists(ports, max_size=3, unique=True))
        container["ports"] = [
            {"name": f"p{i}-{n}"[:15], "containerPort": n, "protocol": "TCP"}
            for i, n in enumerate(numbers)
        ]
    if draw(st.booleans()):
        container["env"] = [
            {"name": f"VAR_{i}", "value": draw(st.text(max_size=8))}
            for i in range(draw(st.integers(0, 4)))
        ]
    if volume_names and draw(st.booleans()):
        mounted = draw(st.lists(st.sampled_from(volume_names), unique=True, max_size=2))
        container["volumeMounts"] = [{"name": v, "mountPath": f"/mnt/{v}"} for v in mounted]
    if draw(st.booleans()):
        container["securityContext"] = {"runAsNonRoot": True, "readOnlyRootFilesystem": True}
    if native:
        container["restartPolicy"] = "Always"
    return container


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    all_names = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    split = draw(st.integers(0, len(all_names) - 1))
    init_names, app_names = all_names[:split], all_names[split:]
    volume_names = draw(st.lists(names, max_size=3, unique=True))

    spec: dict[str, Any] = {
        "containers": [draw(containers(n, volume_names, native=False)) for n in app_names]
    }
    if init_names or draw(st.booleans()):
        spec["initContainers"] = [
            draw(containers(n, volume_names, native=draw(st.booleans()))) for n in init_names
        ]
    if volume_names or draw(st.booleans()):
        spec["volumes"] = [{"name": v, "emptyDir": {}} for v in volume_names]
    if draw(st.booleans()):
        spec["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1000}

    metadata: dict[str, Any] = (
        {"name": draw(names)} if draw(st.booleans()) else {"generateName": draw(names) + "-"}
    )
    if draw(st.booleans()):
        metadata["labels"] = draw(st.dictionaries(label_keys, label_values, max_size=3))
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(sorted(SAFE_ANNOTATIONS)), unique=True, max_size=5))
        metadata["annotations"] = {k: SAFE_ANNOTATIONS[k] for k in keys}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pod=pods())
def test_injection_keeps_pods_valid_and_user_objects_intact(injector: Injector, pod: dict) -> None:
    outcome = injector.evaluate(pod, "shop")
    if outcome.decision == "skipped":
        assert outcome.reason in ("port-conflict", "name-conflict")
        assert outcome.operations == ()
        return
    assert outcome.decision == "injected"
    assert {op["op"] for op in outcome.operations} == {"add"}

    patched = apply_patch(pod, outcome.operations)
    assert_valid_and_user_objects_intact(pod, patched)
    assert {IPTABLES_VOLUME, PROXY_TMP_VOLUME} <= {v["name"] for v in patched["spec"]["volumes"]}

    again = injector.evaluate(patched, "shop")
    assert (again.reason, again.operations) == ("already-injected", ())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
container_like = st.fixed_dictionaries(
    {"name": st.text(max_size=5)},
    optional={
        "ports": json_values
        | st.lists(st.fixed_dictionaries({}, optional={"containerPort": json_values}), max_size=2)
    },
)
pod_like = st.fixed_dictionaries(
    {},
    optional={
        "metadata": json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "labels": json_values,
                "annotations": json_values
                | st.dictionaries(st.sampled_from(sorted(SAFE_ANNOTATIONS)), json_values),
                "name": json_values,
            },
        ),
        "spec": json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "containers": json_values | st.lists(container_like, min_size=1, max_size=3),
                "initContainers": json_values | st.lists(container_like, max_size=2),
                "volumes": json_values,
                "hostNetwork": json_values,
            },
        ),
    },
)


@settings(max_examples=1000, deadline=None)
@given(pod=pod_like | json_values)
def test_any_json_as_the_pod_gets_an_outcome_never_an_exception(
    injector: Injector, pod: Any
) -> None:
    outcome = injector.evaluate(pod, "shop")
    assert outcome.decision in ("injected", "skipped", "denied")
    if outcome.decision == "injected":
        apply_patch(pod, outcome.operations)


@settings(max_examples=200, deadline=None)
@given(suffix=st.sampled_from(sorted(OVERRIDES)), value=st.text(max_size=20))
def test_any_override_value_is_applied_or_denied_naming_the_annotation(
    injector: Injector, suffix: str, value: str
) -> None:
    key = f"injector.dev/{suffix}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "annotations": {key: value}},
        "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]},
    }
    outcome = injector.evaluate(pod, "shop")
    if outcome.decision == "denied":
        assert outcome.reason == "invalid-annotation"
        assert outcome.detail.startswith(f"annotation {key}={value!r} is invalid: ")
    else:
        assert outcome.decision == "injected"
        assert outcome.overrides == {key: value}
        patched = apply_patch(pod, outcome.operations)
        validate_pod(patched)
        validate_injected_proxy(patched)
