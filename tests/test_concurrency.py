"""Many requests at once never mix up uids or patches."""

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
import requests
from admission_data import apply_patch, captured, decode_patch
from server import Server, run_server

REQUESTS = 400
THREADS = 32


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("concurrency")) as running:
        yield running


def distinct_request(number: int) -> tuple[str, bytes]:
    """A captured Pod CREATE made unique: its uid, container name and proxy image."""
    review = orjson.loads(captured("a-deployment-pod.json"))
    uid = str(uuid.uuid4())
    review["request"]["uid"] = uid
    pod = review["request"]["object"]
    pod["spec"]["containers"][0]["name"] = f"app-{number}"
    del pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"]
    pod["metadata"]["annotations"]["injector.dev/proxy-image"] = f"example.com/proxy:{number}"
    return uid, orjson.dumps(review)


def test_concurrent_reviews_each_get_their_own_answer(server: Server) -> None:
    local = threading.local()

    def review(number: int) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        uid, body = distinct_request(number)
        response = local.session.post(
            f"{server.url}/?timeout=10s",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 200
        answer = response.json()["response"]
        assert answer["uid"] == uid
        pod = orjson.loads(body)["request"]["object"]
        patched = apply_patch(pod, decode_patch(answer))
        proxy = next(c for c in patched["spec"]["initContainers"] if c["name"] == "mesh-proxy")
        assert proxy["image"] == f"example.com/proxy:{number}"
        default = patched["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"]
        assert default == f"app-{number}"

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(review, range(REQUESTS)))

    reviewed = [e for e in server.log_entries() if e.get("message") == "admission review"]
    assert len(reviewed) == REQUESTS
    assert len({e["uid"] for e in reviewed}) == REQUESTS
