"""The HTTP contract, against the real functions-framework server process on loopback."""

import gzip
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests
from admission_data import CAPTURED, apply_patch, captured, decode_patch
from kubernetes_schema import validate_pod
from server import Server, run_server

from injector.service.webhook import MAX_BODY_BYTES

# Exactly the headers a v1.32 API server sends, in its order (Content-Length is added).
API_SERVER_HEADERS = {
    "User-Agent": "kube-apiserver-admission",
    "Accept": "application/json, */*",
    "Content-Type": "application/json",
    "Accept-Encoding": "gzip",
}
TOKENS = ("rotating-token-new-0123456789", "rotating-token-old-9876543210")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("plain")) as running:
        yield running


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"INJECTOR_TOKENS": ",".join(TOKENS)}
    with run_server(tmp_path_factory.mktemp("guarded"), env) as running:
        yield running


def post(url: str, body: bytes, **headers: str) -> requests.Response:
    return requests.post(url, data=body, headers={**API_SERVER_HEADERS, **headers}, timeout=10)


def assert_json_error(response: requests.Response, status: int, message: str) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.text.count("\n") == 0
    assert message in response.json()["error"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURED.glob("*.json")))
def test_every_captured_request_is_answered_as_the_api_server_expects(
    server: Server, name: str
) -> None:
    body = captured(name)
    request = orjson.loads(body)
    response = post(f"{server.url}/capture/v1?timeout=10s", body)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    answer = response.json()
    assert answer["apiVersion"] == request["apiVersion"]
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == request["request"]["uid"]
    assert answer["response"]["allowed"] is True
    if "patch" in answer["response"]:
        validate_pod(apply_patch(request["request"]["object"], decode_patch(answer["response"])))


def test_healthz_reports_the_loaded_configuration(server: Server) -> None:
    response = requests.get(f"{server.url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "config": {
            "source": "embedded",
            "version": "embedded",
            "digest": response.json()["config"]["digest"],
        },
    }
    assert len(response.json()["config"]["digest"]) == 12


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/", "POST"),
        ("PUT", "/webhook", "POST"),
        ("DELETE", "/", "POST"),
        ("PATCH", "/", "POST"),
        ("POST", "/healthz", "GET, HEAD"),
    ],
)
def test_wrong_method_is_405(server: Server, method: str, path: str, allow: str) -> None:
    response = requests.request(method, server.url + path, data=b"{}", timeout=10)
    assert_json_error(response, 405, "")
    assert response.headers["Allow"] == allow


@pytest.mark.parametrize("content_type", ["text/plain", "application/yaml", "", "application/x"])
def test_other_content_type_is_415(server: Server, content_type: str) -> None:
    body = captured("b-minimal-pod.json")
    response = post(server.url + "/", body, **{"Content-Type": content_type})
    assert_json_error(response, 415, "the body must be application/json")


def test_json_with_charset_is_accepted(server: Server) -> None:
    body = captured("b-minimal-pod.json")
    response = post(server.url + "/", body, **{"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 200


def test_body_over_the_cap_is_413(server: Server) -> None:
    response = post(server.url + "/", b" " * (MAX_BODY_BYTES + 1))
    assert_json_error(response, 413, f"larger than {MAX_BODY_BYTES} bytes")


def test_chunked_body_over_the_cap_is_413(server: Server) -> None:
    chunks = (b" " * 1024 * 1024 for _ in range(MAX_BODY_BYTES // (1024 * 1024) + 1))
    response = post(server.url + "/", chunks)  # a generator is sent chunked
    assert_json_error(response, 413, f"larger than {MAX_BODY_BYTES} bytes")


def test_body_at_the_cap_is_read_and_judged_on_content(server: Server) -> None:
    body = captured("b-minimal-pod.json")
    padded = body.rstrip() + b" " * (MAX_BODY_BYTES - len(body.rstrip()))
    assert len(padded) == MAX_BODY_BYTES
    assert post(server.url + "/", padded).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "the body is not valid JSON"),
        (b"", "the body is not valid JSON"),
        (b'"a string"', "expected a JSON object"),
        (b'{"kind": "Pod", "apiVersion": "v1"}', "the body is not an AdmissionReview request"),
        (gzip.compress(b"{}"), "the body is not valid JSON"),
    ],
)
def test_malformed_body_is_400_with_a_one_line_json_error(
    server: Server, body: bytes, message: str
) -> None:
    assert_json_error(post(server.url + "/", body), 400, message)


def test_pod_create_without_a_pod_object_is_400(server: Server) -> None:
    request = orjson.loads(captured("b-minimal-pod.json"))
    request["request"]["object"] = None
    response = post(server.url + "/", orjson.dumps(request))
    assert_json_error(response, 400, "request.object must be the Pod")


def test_one_structured_log_line_per_review(server: Server) -> None:
    body = captured("a-deployment-pod.json")
    uid = orjson.loads(body)["request"]["uid"]
    before = len([e for e in server.log_entries() if e.get("uid") == uid])
    assert post(server.url + "/?timeout=10s", body).status_code == 200
    lines = [e for e in server.log_entries() if e.get("uid") == uid]
    assert len(lines) == before + 1
    line = lines[-1]
    assert line == {
        "severity": "INFO",
        "message": "admission review",
        "uid": uid,
        "namespace": "shop",
        "pod": "checkout-7d9c6b5f4-",
        "owner_kind": "ReplicaSet",
        "operation": "CREATE",
        "resource": "pods",
        "dry_run": False,
        "decision": "injected",
        "reason": "injected",
        "patch_ops": 7,
        "config_version": line["config_version"],
        "latency_ms": line["latency_ms"],
    }
    assert isinstance(line["latency_ms"], float)
    assert "spec" not in server.log_text()


def test_start_up_logs_the_source_and_warns_that_no_token_is_set(server: Server) -> None:
    messages = [e["message"] for e in server.log_entries()]
    assert "configuration source: the embedded default configuration" in messages
    assert "no URL token is configured: every path is served (fine for local use)" in messages


@pytest.mark.parametrize("token", TOKENS)
def test_each_configured_token_opens_the_webhook(guarded: Server, token: str) -> None:
    response = post(f"{guarded.url}/{token}?timeout=10s", captured("b-minimal-pod.json"))
    assert response.status_code == 200
    assert "patch" in response.json()["response"]
    assert requests.get(f"{guarded.url}/{token}/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/", "/healthz", "/capture/v1", f"/{TOKENS[0][:-1]}", f"/{TOKENS[0]}x", "/robots.txt"],
)
def test_paths_without_a_valid_token_get_404_with_no_hint(guarded: Server, path: str) -> None:
    post_response = post(guarded.url + path, captured("b-minimal-pod.json"))
    get_response = requests.get(guarded.url + path, timeout=10)
    for response in (post_response, get_response):
        assert response.status_code == 404
        assert "token" not in response.text.lower()


def test_tokens_never_appear_in_logs(guarded: Server) -> None:
    post(f"{guarded.url}/{TOKENS[0]}", captured("b-minimal-pod.json"))
    post(f"{guarded.url}/{TOKENS[1][::-1]}", captured("b-minimal-pod.json"))
    text = guarded.log_text()
    assert "admission review" in text
    for token in (*TOKENS, TOKENS[1][::-1]):
        assert token not in text


def test_without_a_valid_configuration_pods_are_denied_and_health_is_503(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("proxy: {uid: -5}\n")
    with run_server(tmp_path, {"INJECTOR_CONFIG_FILE": str(config)}) as broken:
        health = requests.get(f"{broken.url}/healthz", timeout=10)
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"

        create = post(broken.url + "/", captured("b-minimal-pod.json")).json()["response"]
        assert create["allowed"] is False
        assert "the injector has no valid configuration" in create["status"]["message"]

        update = post(broken.url + "/", captured("f-update-label.json")).json()["response"]
        assert update["allowed"] is True

        errors = [e for e in broken.log_entries() if e["severity"] == "ERROR"]
        assert any(
            "proxy.uid: Input should be greater than or equal to 1" in e.get("error", "")
            for e in errors
        )
