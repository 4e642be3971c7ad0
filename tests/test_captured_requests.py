"""Every request a real Kubernetes v1.32 API server sent gets the right answer."""

import orjson
import pytest
from admission_data import apply_patch, captured, decode_patch, respond
from envoy_validation import validate_injected_proxy
from kubernetes_schema import validate_pod

from injector.core.engine import Injector
from injector.core.keys import INIT_CONTAINER, INIT_CONTAINER_IPV6, PROXY_CONTAINER

POD_CREATES = [
    "a-deployment-pod.json",
    "a-deployment-pod-resizepolicy.json",
    "b-minimal-pod.json",
    "c-init-native-sidecar.json",
    "e-dry-run-create.json",
    "h-large-env-2000.json",
    "j-deployment-pod-v1beta1.json",
]
NOT_MUTATED = [
    "f-update-label.json",
    "g-delete-pod.json",
    "g-delete-pod-third-call.json",
    "i-attach.json",
    "i-binding.json",
    "i-ephemeralcontainers.json",
    "i-eviction.json",
    "i-exec.json",
    "i-portforward.json",
    "i-proxy.json",
    "i-status.json",
]


def review(injector: Injector, body: bytes) -> tuple[dict, object]:
    return respond(injector, body)


@pytest.mark.parametrize("name", POD_CREATES)
def test_pod_creates_are_injected_into_valid_pods(injector: Injector, name: str) -> None:
    body = captured(name)
    request = orjson.loads(body)
    answer, outcome = review(injector, body)

    assert answer["apiVersion"] == request["apiVersion"]
    assert answer["kind"] == "AdmissionReview"
    response = answer["response"]
    assert response["uid"] == request["request"]["uid"]
    assert response["allowed"] is True
    assert outcome.reason == "injected"

    pod = request["request"]["object"]
    patched = apply_patch(pod, decode_patch(response))
    validate_pod(patched)
    validate_injected_proxy(patched)
    init_names = [c["name"] for c in patched["spec"]["initContainers"]]
    assert init_names[:3] == [INIT_CONTAINER, INIT_CONTAINER_IPV6, PROXY_CONTAINER]
    assert patched["spec"]["initContainers"][2]["restartPolicy"] == "Always"
    assert patched["spec"]["containers"] == pod["spec"]["containers"]


@pytest.mark.parametrize("name", POD_CREATES)
def test_a_second_review_of_the_injected_pod_returns_no_patch(
    injector: Injector, name: str
) -> None:
    request = orjson.loads(captured(name))
    answer, _ = review(injector, captured(name))
    request["request"]["object"] = apply_patch(
        request["request"]["object"], decode_patch(answer["response"])
    )
    second, outcome = review(injector, orjson.dumps(request))
    assert second["response"] == {"uid": request["request"]["uid"], "allowed": True}
    assert outcome.reason == "already-injected"


@pytest.mark.parametrize("name", NOT_MUTATED)
def test_other_operations_and_subresources_are_allowed_without_a_patch(
    injector: Injector, name: str
) -> None:
    request = orjson.loads(captured(name))
    answer, outcome = review(injector, captured(name))
    assert answer == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": request["request"]["uid"], "allowed": True},
    }
    assert outcome.reason == "not-a-pod-create"


def test_host_network_pod_is_skipped(injector: Injector) -> None:
    answer, outcome = review(injector, captured("d-host-network.json"))
    assert answer["response"]["allowed"] is True
    assert "patch" not in answer["response"]
    assert outcome.reason == "host-network"


def test_v1beta1_request_is_answered_in_v1beta1(injector: Injector) -> None:
    answer, _ = review(injector, captured("j-deployment-pod-v1beta1.json"))
    assert answer["apiVersion"] == "admission.k8s.io/v1beta1"
    v1_answer, _ = review(injector, captured("a-deployment-pod.json"))
    assert decode_patch(answer["response"]) != []
    assert len(decode_patch(answer["response"])) == len(decode_patch(v1_answer["response"]))


def test_dry_run_gets_exactly_the_answer_of_a_real_create(injector: Injector) -> None:
    dry = orjson.loads(captured("e-dry-run-create.json"))
    assert dry["request"]["dryRun"] is True
    real = orjson.loads(captured("e-dry-run-create.json"))
    real["request"]["dryRun"] = False
    real["request"]["options"].pop("dryRun")
    dry_answer, _ = review(injector, orjson.dumps(dry))
    real_answer, _ = review(injector, orjson.dumps(real))
    assert dry_answer == real_answer


def test_existing_default_container_annotation_is_kept(injector: Injector) -> None:
    request = orjson.loads(captured("a-deployment-pod.json"))
    answer, _ = review(injector, captured("a-deployment-pod.json"))
    operations = decode_patch(answer["response"])
    patched = apply_patch(request["request"]["object"], operations)
    annotations = patched["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/default-container"] == "checkout"
    assert all(op["op"] == "add" for op in operations)
    original = request["request"]["object"]["metadata"]["annotations"]
    assert {k: annotations[k] for k in original} == original


def test_pod_without_labels_or_annotations_gets_each_map_created_once(
    injector: Injector,
) -> None:
    answer, _ = review(injector, captured("b-minimal-pod.json"))
    paths = [op["path"] for op in decode_patch(answer["response"])]
    assert paths.count("/metadata/annotations") == 1
    assert paths.count("/metadata/labels") == 1
    assert not [p for p in paths if p.startswith("/metadata/annotations/")]
    pod = orjson.loads(captured("b-minimal-pod.json"))["request"]["object"]
    patched = apply_patch(pod, decode_patch(answer["response"]))
    assert (
        patched["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"]
        == (pod["spec"]["containers"][0]["name"])
    )


def test_user_init_containers_follow_the_injected_ones_in_their_order(
    injector: Injector,
) -> None:
    pod = orjson.loads(captured("c-init-native-sidecar.json"))["request"]["object"]
    answer, _ = review(injector, captured("c-init-native-sidecar.json"))
    patched = apply_patch(pod, decode_patch(answer["response"]))
    assert patched["spec"]["initContainers"][3:] == pod["spec"]["initContainers"]
    assert patched["spec"]["volumes"][: len(pod["spec"]["volumes"])] == pod["spec"]["volumes"]
