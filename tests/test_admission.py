"""AdmissionReview parsing and responses."""

import base64

import orjson
import pytest
from admission_data import captured

from injector.errors import InvalidReview
from injector.service.admission import AdmissionResponse, parse_review


def test_unknown_fields_are_ignored_so_newer_api_servers_do_no_harm() -> None:
    body = orjson.loads(captured("b-minimal-pod.json"))
    body["futureField"] = {"x": 1}
    body["request"]["futureRequestField"] = [1, 2]
    review = parse_review(orjson.dumps(body))
    assert review.request.uid == body["request"]["uid"]


def test_the_pod_is_kept_exactly_as_it_arrived() -> None:
    body = orjson.loads(captured("a-deployment-pod.json"))
    review = parse_review(captured("a-deployment-pod.json"))
    assert review.request.object == body["request"]["object"]
    assert list(review.request.object["spec"]) == list(body["request"]["object"]["spec"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the body is not valid JSON"),
        (b"{", "the body is not valid JSON"),
        (b"[1]", "expected a JSON object"),
        (b"{}", "apiVersion: Field required; kind: Field required; request: Field required"),
        (
            b'{"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview", "request": {}}',
            "apiVersion: Input should be 'admission.k8s.io/v1' or 'admission.k8s.io/v1beta1'",
        ),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "Pod", "request": {}}',
            "kind: Input should be 'AdmissionReview'",
        ),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": '
            b'{"uid": "", "operation": "PATCH", "resource": {"group": ""}}}',
            "request.uid: String should have at least 1 character",
        ),
    ],
)
def test_a_body_that_is_not_an_admission_review_says_what_is_wrong(body: bytes, message: str):
    with pytest.raises(InvalidReview) as error:
        parse_review(body)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_response_echoes_api_version_and_uid_and_encodes_the_patch() -> None:
    review = parse_review(captured("j-deployment-pod-v1beta1.json"))
    patch = [{"op": "add", "path": "/metadata/labels/a", "value": "b"}]
    response = AdmissionResponse.to(review).with_patch(patch).with_warnings(["careful"])
    answer = orjson.loads(response.into_review())
    assert answer == {
        "apiVersion": "admission.k8s.io/v1beta1",
        "kind": "AdmissionReview",
        "response": {
            "uid": review.request.uid,
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": base64.b64encode(orjson.dumps(patch)).decode(),
            "warnings": ["careful"],
        },
    }


def test_denial_carries_a_status_message() -> None:
    review = parse_review(captured("b-minimal-pod.json"))
    answer = orjson.loads(AdmissionResponse.to(review).deny(400, "no").into_review())
    assert answer["response"] == {
        "uid": review.request.uid,
        "allowed": False,
        "status": {"code": 400, "message": "no"},
    }


def test_a_denial_carries_no_patch_but_keeps_its_warnings() -> None:
    review = parse_review(captured("b-minimal-pod.json"))
    patch = [{"op": "add", "path": "/metadata/labels/a", "value": "b"}]
    response = AdmissionResponse.to(review).with_patch(patch).with_warnings(["why"])
    answer = orjson.loads(response.deny(400, "no").into_review())["response"]
    assert answer == {
        "uid": review.request.uid,
        "allowed": False,
        "warnings": ["why"],
        "status": {"code": 400, "message": "no"},
    }


def test_a_pod_create_whose_object_is_not_a_pod_is_not_a_review() -> None:
    body = orjson.loads(captured("b-minimal-pod.json"))
    body["request"]["object"] = [1, 2]
    with pytest.raises(InvalidReview, match=r"request.object must be the Pod for a CREATE of pods"):
        parse_review(orjson.dumps(body))
