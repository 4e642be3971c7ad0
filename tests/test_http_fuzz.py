"""Thousands of random and mutated bodies at the real server: never a 5xx, never a wrong uid."""

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests
from admission_data import CAPTURED, captured
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server import Server, run_server

SEEDS = [orjson.loads(path.read_bytes()) for path in sorted(CAPTURED.glob("*.json"))]
EXPECTED_STATUSES = {200, 400}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def paths_of(value: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            paths += paths_of(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += paths_of(child, (*prefix, index))
    return paths


@st.composite
def mutated_reviews(draw: st.DrawFn) -> dict:
    """A captured request with a few of its members replaced by other JSON or removed."""
    review = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in paths_of(review) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = review
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()):
            parent[path[-1]] = draw(json_values)
        elif isinstance(parent, dict):
            del parent[path[-1]]
    return review


def check(session: requests.Session, server: Server, body: bytes) -> None:
    response = session.post(
        f"{server.url}/?timeout=10s",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code in EXPECTED_STATUSES, response.text
    answer = response.json()
    if response.status_code == 200:
        sent = orjson.loads(body)
        assert answer["response"]["uid"] == sent["request"]["uid"]
        assert answer["apiVersion"] == sent["apiVersion"]
    else:
        assert set(answer) == {"error"}


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(review=mutated_reviews())
def test_mutated_captured_requests(server: Server, session: requests.Session, review: dict):
    check(session, server, orjson.dumps(review))


@settings(max_examples=500, deadline=None)
@given(body=st.binary(max_size=200) | json_values.map(orjson.dumps))
def test_random_bodies(server: Server, session: requests.Session, body: bytes) -> None:
    response = session.post(
        server.url + "/", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.status_code in EXPECTED_STATUSES, response.text


LINE_BOUNDARIES = "\x85\u2028\u2029"  # line boundaries to str.splitlines, not to JSON lines


def test_unicode_line_boundaries_in_a_pod_stay_inside_its_log_line(
    server: Server, session: requests.Session
) -> None:
    review = orjson.loads(captured("b-minimal-pod.json"))
    review["request"]["uid"] = uid = str(uuid.uuid4())
    metadata = review["request"]["object"]["metadata"]
    metadata["name"] = f"minimal{LINE_BOUNDARIES}pod"
    metadata["ownerReferences"] = [
        {"apiVersion": "v1", "kind": f"Job{LINE_BOUNDARIES}", "name": "j", "uid": uid},
    ]
    metadata["ownerReferences"][0]["controller"] = True
    check(session, server, orjson.dumps(review))
    assert all(boundary in server.log_text() for boundary in LINE_BOUNDARIES)  # not escaped
    [entry] = [entry for entry in server.log_entries() if entry.get("uid") == uid]
    assert (entry["pod"], entry["owner_kind"]) == (metadata["name"], f"Job{LINE_BOUNDARIES}")


def test_the_server_logged_no_failure(server: Server) -> None:
    assert not [e for e in server.log_entries() if e["severity"] == "ERROR"]
    assert "Traceback" not in server.log_text()
