"""Inputs rebuilt from public bug reports against other injectors (tests/data/real-world): Windows
and mirror Pods, Guaranteed Pods, classic proxies in Pods that run to completion, and Pods another
mesh has injected, with variants of each kind. Each is answered as it must be by the webhook (the
real server, over HTTP, as the API server calls it) and by the `inject` and `explain` commands.
"""

import copy
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from admission_data import CAPTURED, apply_patch, decode_patch
from kubernetes_schema import validate_pod
from lines import lines
from ruamel.yaml import YAML
from server import REPO, Server, run_server

from injector.cli import main
from injector.core.meshes import MESHES
from injector.kube.qos import BURSTABLE, GUARANTEED, qos_class

REAL_WORLD = Path(__file__).parent / "data" / "real-world"
YAML_READER = YAML(typ="safe", pure=True)
ENVIRONMENT = {k: v for k, v in os.environ.items() if not k.startswith("INJECTOR_")}
OTHER_MESH_WARNING = "two meshes' proxies in one Pod redirect each other's traffic"
RUN_TO_COMPLETION_WARNING = "the proxy runs as a classic container in a Pod with restartPolicy"
QOS_WARNING = "the Pod's QoS class is Guaranteed, but once injected it is Burstable"


def fixture(name: str) -> dict[str, Any]:
    return YAML_READER.load((REAL_WORLD / name).read_text())


def as_pod(obj: dict[str, Any]) -> dict[str, Any]:
    """The Pod the API server would review: the object itself, or a workload's Pod template."""
    if obj["kind"] == "Pod":
        return copy.deepcopy(obj)
    template = obj["spec"]["template"]
    return {"apiVersion": "v1", "kind": "Pod", **copy.deepcopy(template)}


def review(pod: dict[str, Any], namespace: str = "shop") -> tuple[str, bytes]:
    """An AdmissionReview for a Pod CREATE, in the envelope a v1.32 API server sends."""
    body = orjson.loads((CAPTURED / "b-minimal-pod.json").read_bytes())
    uid = str(uuid.uuid4())
    request = body["request"]
    request.update(uid=uid, namespace=namespace, object=pod)
    request["name"] = pod["metadata"].get("name", "")
    return uid, orjson.dumps(body)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("real-world")) as running:
        yield running


@pytest.fixture(scope="module")
def unlimited_proxy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The webhook with a configuration whose proxy sets requests but no limits."""
    directory = tmp_path_factory.mktemp("unlimited-proxy")
    config = directory / "config.yaml"
    config.write_text(
        "proxy:\n  resources:\n    requests: {cpu: 100m, memory: 128Mi}\n"
        "    limits: {cpu: null, memory: null}\n"  # merged over the default: null drops it
    )
    with run_server(directory, {"INJECTOR_CONFIG_FILE": str(config)}) as running:
        yield running


def post(server: Server, pod: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The webhook's response to a review of the Pod, and the review's uid."""
    uid, body = review(pod)
    answer = requests.post(
        server.url + "/?timeout=10s",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 200
    response = answer.json()["response"]
    assert (response["uid"], response["allowed"]) == (uid, True)
    return uid, response


def injected(server: Server, pod: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The Pod with the webhook's patch applied (checked valid), and the warnings."""
    _, response = post(server, pod)
    patched = apply_patch(pod, decode_patch(response))
    validate_pod(patched)
    return patched, response.get("warnings", [])


def skipped(server: Server, pod: dict[str, Any], reason: str) -> list[str]:
    """Asserts the webhook lets the Pod through unchanged, logging the reason; the warnings."""
    uid, response = post(server, pod)
    assert "patch" not in response
    [line] = [entry for entry in server.log_entries() if entry.get("uid") == uid]
    assert (line["decision"], line["reason"]) == ("skipped", reason)
    return response.get("warnings", [])


# Windows Pods.

WINDOWS_BY_AFFINITY = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"generateName": "iis-", "namespace": "shop"},
    "spec": {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/os", "operator": "In", "values": ["windows"]}
                            ]
                        }
                    ]
                }
            }
        },
        "containers": [{"name": "iis", "image": "example.test/iis:ltsc2022"}],
    },
}


def windows_by_node_selector_only() -> dict[str, Any]:
    pod = fixture("windows-pod.yaml")
    del pod["spec"]["os"]
    return pod


@pytest.mark.parametrize(
    "pod",
    [
        lambda: fixture("windows-pod.yaml"),
        windows_by_node_selector_only,
        lambda: copy.deepcopy(WINDOWS_BY_AFFINITY),
    ],
    ids=["spec.os", "nodeSelector", "node-affinity"],
)
def test_the_webhook_lets_a_windows_pod_through_untouched(server: Server, pod) -> None:
    assert skipped(server, pod(), "windows-pod") == []


# Mirror Pods.


def test_the_webhook_lets_a_mirror_pod_through_untouched(server: Server) -> None:
    assert skipped(server, fixture("mirror-pod.yaml"), "mirror-pod") == []
    # Even one whose labels or annotations the webhook would otherwise deny.
    pod = fixture("mirror-pod.yaml")
    pod["metadata"]["labels"] = {"injector.dev/inject": "yes"}
    pod["metadata"]["annotations"]["injector.dev/log-level"] = "loud"
    assert skipped(server, pod, "mirror-pod") == []


# Guaranteed Pods.


def limits_only() -> dict[str, Any]:
    pod = fixture("guaranteed-qos.yaml")
    del pod["spec"]["containers"][0]["resources"]["requests"]
    return pod


def limits_only_as_the_api_server_defaults_it() -> dict[str, Any]:
    pod = limits_only()
    resources = pod["spec"]["containers"][0]["resources"]
    resources["requests"] = dict(resources["limits"])
    return pod


@pytest.mark.parametrize(
    "pod",
    [
        lambda: fixture("guaranteed-qos.yaml"),
        limits_only,
        limits_only_as_the_api_server_defaults_it,
    ],
    ids=["fixture", "limits-only", "limits-only-defaulted"],
)
def test_the_webhook_keeps_a_guaranteed_pod_guaranteed(server: Server, pod) -> None:
    the_pod = pod()
    assert qos_class(the_pod["spec"]) == GUARANTEED
    patched, warnings = injected(server, the_pod)
    assert qos_class(patched["spec"]) == GUARANTEED
    assert warnings == []


def test_the_webhook_warns_when_a_guaranteed_pod_cannot_stay_guaranteed(
    unlimited_proxy_server: Server,
) -> None:
    pod = fixture("guaranteed-qos.yaml")
    for key in list(pod["metadata"]["annotations"]):
        if key.endswith("-limit"):
            del pod["metadata"]["annotations"][key]
    patched, warnings = injected(unlimited_proxy_server, pod)
    assert qos_class(patched["spec"]) == BURSTABLE
    assert warnings == [
        f"{QOS_WARNING}: mesh-proxy has no cpu limit to set its request to (set "
        "proxy.resources.limits.cpu in the configuration, or the annotation "
        "injector.dev/proxy-cpu-limit); mesh-proxy has no memory limit to set its request to "
        "(set proxy.resources.limits.memory in the configuration, or the annotation "
        "injector.dev/proxy-memory-limit)"
    ]


# A classic proxy in a Pod that runs to completion.


@pytest.mark.parametrize("restart_policy", ["Never", "OnFailure"])
def test_the_webhook_warns_about_a_classic_proxy_in_a_pod_that_runs_to_completion(
    server: Server, restart_policy: str
) -> None:
    pod = fixture("classic-proxy-run-to-completion.yaml")
    pod["spec"]["restartPolicy"] = restart_policy
    patched, warnings = injected(server, pod)
    assert [c["name"] for c in patched["spec"]["containers"]] == ["importer", "mesh-proxy"]
    [warning] = warnings
    assert warning.startswith(f"{RUN_TO_COMPLETION_WARNING}: {restart_policy}, ")
    assert "a native sidecar" in warning
    assert "does not have this problem" in warning


def test_the_webhook_does_not_warn_about_a_native_proxy_in_a_pod_that_runs_to_completion(
    server: Server,
) -> None:
    pod = fixture("classic-proxy-run-to-completion.yaml")
    del pod["metadata"]["annotations"]
    patched, warnings = injected(server, pod)
    assert [c["name"] for c in patched["spec"]["containers"]] == ["importer"]
    assert warnings == []


# Pods another mesh has injected.


def one_container_of_each_mesh() -> list[tuple[str, dict[str, Any]]]:
    pods = []
    for mesh in MESHES:
        name = sorted(mesh.containers)[0]
        pod = fixture("guaranteed-qos.yaml")
        pod["spec"]["initContainers"] = [{"name": name, "image": "example.test/mesh:1"}]
        pods.append((mesh.name, pod))
    return pods


@pytest.mark.parametrize(
    ("mesh", "pod"),
    [
        ("Linkerd", fixture("other-mesh-linkerd.yaml")),
        ("Istio", as_pod(fixture("other-mesh-istio.yaml"))),
        *one_container_of_each_mesh(),
    ],
    ids=["linkerd-fixture", "istio-fixture", *(m.name for m in MESHES)],
)
def test_the_webhook_lets_another_meshs_pod_through_with_a_warning_naming_it(
    server: Server, mesh: str, pod: dict[str, Any]
) -> None:
    [warning] = skipped(server, pod, "other-mesh")
    assert warning.startswith(f"the proxy was not injected: {mesh} already injected the Pod (")
    assert warning.endswith(OTHER_MESH_WARNING)


def test_the_webhook_injects_a_pod_with_only_another_meshs_opt_in(server: Server) -> None:
    pod = fixture("other-mesh-linkerd.yaml")
    pod["spec"]["initContainers"] = []
    pod["spec"]["containers"] = [c for c in pod["spec"]["containers"] if c["name"] == "orders"]
    del pod["metadata"]["annotations"]["linkerd.io/proxy-version"]
    patched, warnings = injected(server, pod)
    assert "mesh-proxy" in [c["name"] for c in patched["spec"]["initContainers"]]
    assert warnings == []


# The commands, on the same inputs.


_FILES = {
    "edge-cache-node-a": "mirror-pod",
    "cart": "other-mesh-istio",
    "orders-7f9c": "other-mesh-linkerd",
    "legacy-billing": "windows-pod",
}


POLICY_FIXTURES = (
    "classic-proxy-run-to-completion.yaml",
    "guaranteed-qos.yaml",
    "mirror-pod.yaml",
    "other-mesh-istio.yaml",
    "other-mesh-linkerd.yaml",
    "windows-pod.yaml",
)


def test_inject_reports_each_fixture_with_its_reason_and_warnings() -> None:
    files = [argument for name in POLICY_FIXTURES for argument in ("-f", str(REAL_WORLD / name))]
    result = subprocess.run(
        [sys.executable, "-m", "injector", "inject", *files],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=ENVIRONMENT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    reported = lines(result.stderr)
    where = {path.name: f"{REAL_WORLD / path.name} document 1" for path in REAL_WORLD.iterdir()}
    assert reported[0] == (
        f"{where['classic-proxy-run-to-completion.yaml']}: Pod/import-run-: injected"
    )
    assert reported[1].startswith(f"  warning: {RUN_TO_COMPLETION_WARNING}: Never, ")
    assert reported[2:] == [
        f"{where['guaranteed-qos.yaml']}: Pod/pinned-matcher: injected",
        f"{where['mirror-pod.yaml']}: Pod/edge-cache-node-a: skipped (mirror-pod)",
        f"{where['other-mesh-istio.yaml']}: Deployment/cart: skipped (other-mesh)",
        "  warning: the proxy was not injected: Istio already injected the Pod (container "
        "istio-proxy, container istio-init, annotation sidecar.istio.io/status); "
        + OTHER_MESH_WARNING,
        f"{where['other-mesh-linkerd.yaml']}: Pod/orders-7f9c: skipped (other-mesh)",
        "  warning: the proxy was not injected: Linkerd already injected the Pod (container "
        "linkerd-proxy, container linkerd-init, annotation linkerd.io/proxy-version); "
        + OTHER_MESH_WARNING,
        f"{where['windows-pod.yaml']}: Pod/legacy-billing: skipped (windows-pod)",
        "6 workloads in 6 documents: 2 injected, 4 skipped",
    ]
    documents = {
        d["metadata"].get("name") or d["metadata"]["generateName"]: d
        for d in YAML_READER.load_all(result.stdout)
    }
    matcher = documents["pinned-matcher"]
    assert qos_class(matcher["spec"]) == GUARANTEED
    validate_pod(matcher)
    for name in ("edge-cache-node-a", "cart", "orders-7f9c", "legacy-billing"):
        assert documents[name] == YAML_READER.load(
            (REAL_WORLD / f"{_FILES[name]}.yaml").read_text()
        )


@pytest.fixture(autouse=True)
def no_injector_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("INJECTOR_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "windows-pod.yaml",
            ["  reason: windows-pod: the Pod is a Windows Pod (spec.os.name: windows)"],
        ),
        ("mirror-pod.yaml", ["  reason: mirror-pod: the Pod is the API server's mirror"]),
        (
            "other-mesh-linkerd.yaml",
            [
                "  reason: other-mesh: Linkerd already injected the Pod (",
                "  warning: the proxy was not injected: Linkerd already injected the Pod (",
            ],
        ),
        (
            "other-mesh-istio.yaml",
            [
                "  reason: other-mesh: Istio already injected the Pod (",
                "  warning: the proxy was not injected: Istio already injected the Pod (",
            ],
        ),
        (
            "classic-proxy-run-to-completion.yaml",
            [
                "  reason: injected: the default policy is enabled",
                f"  warning: {RUN_TO_COMPLETION_WARNING}: Never, ",
                "  note: mesh-init and mesh-init-ipv6 add NET_ADMIN and NET_RAW, which the Pod "
                "Security Standards baseline and restricted both forbid",
            ],
        ),
        (
            "guaranteed-qos.yaml",
            [
                "  reason: injected: the default policy is enabled",
                "  note: mesh-init and mesh-init-ipv6 add NET_ADMIN and NET_RAW",
            ],
        ),
    ],
)
def test_explain_says_why_for_each_fixture(
    capsys: pytest.CaptureFixture[str], name: str, expected: list[str]
) -> None:
    assert main(["explain", "-f", str(REAL_WORLD / name)]) == 0
    said = [
        line
        for line in lines(capsys.readouterr().out)
        if line.startswith(("  reason:", "  warning:", "  note:"))
    ]
    assert len(said) == len(expected)
    for line, start in zip(said, expected, strict=True):
        assert line.startswith(start)


def test_explain_says_what_to_do_about_pod_security(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "-f", str(REAL_WORLD / "guaranteed-qos.yaml")]) == 0
    [note] = [line for line in lines(capsys.readouterr().out) if "note:" in line]
    assert "(pod-security.kubernetes.io/enforce), the API server rejects the injected Pod" in note
    assert "Inject only where the namespace enforces privileged" in note
    assert 'opt the Pod out with the label injector.dev/inject: "false"' in note


WORKLOADS = """\
apiVersion: batch/v1
kind: Job
metadata: {name: import}
spec:
  template:
    metadata:
      annotations:
        injector.dev/native-sidecar: "false"
        injector.dev/hold-application-until-proxy-ready: "false"
    spec:
      restartPolicy: OnFailure
      containers: [{name: importer, image: example.test/importer:3}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations:
            injector.dev/native-sidecar: "false"
            injector.dev/hold-application-until-proxy-ready: "false"
        spec:
          restartPolicy: Never
          containers: [{name: report, image: example.test/report:1}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: win-agent}
spec:
  selector: {matchLabels: {app: win-agent}}
  template:
    metadata: {labels: {app: win-agent}}
    spec:
      nodeSelector: {kubernetes.io/os: windows}
      containers: [{name: agent, image: example.test/agent:ltsc2022}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ledger}
spec:
  serviceName: ledger
  selector: {matchLabels: {app: ledger}}
  template:
    metadata: {labels: {app: ledger}}
    spec:
      containers:
      - name: ledger
        image: example.test/ledger:7
        resources: {limits: {cpu: "1", memory: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {kuma.io/sidecar-injected: "true"}
    spec:
      containers:
      - {name: web, image: example.test/web:2}
      - {name: kuma-sidecar, image: example.test/kuma-dp:2.9}
"""


def test_inject_treats_every_workload_kind_like_a_pod(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "workloads.yaml"
    path.write_text(WORKLOADS)
    assert main(["inject", "-f", str(path)]) == 0
    output = capsys.readouterr()
    reported = lines(output.err)
    assert [line for line in reported if not line.startswith("  warning:")] == [
        f"{path} document 1: Job/import: injected",
        f"{path} document 2: CronJob/report: injected",
        f"{path} document 3: DaemonSet/win-agent: skipped (windows-pod)",
        f"{path} document 4: StatefulSet/ledger: injected",
        f"{path} document 5: Deployment/web: skipped (other-mesh)",
        "5 workloads in 5 documents: 3 injected, 2 skipped",
    ]
    warnings = [line for line in reported if line.startswith("  warning:")]
    assert warnings[0].startswith(f"  warning: {RUN_TO_COMPLETION_WARNING}: OnFailure, ")
    assert warnings[1].startswith(f"  warning: {RUN_TO_COMPLETION_WARNING}: Never, ")
    assert warnings[2].startswith("  warning: the proxy was not injected: Kuma already injected")
    assert len(warnings) == 3
    ledger = list(YAML_READER.load_all(output.out))[3]["spec"]["template"]
    assert qos_class(ledger["spec"]) == GUARANTEED
