"""When reviewing fails inside the webhook: fail closed by default, or allow when configured."""

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from admission_data import captured

from injector.config import InjectorConfig
from injector.engine import Injector
from injector.logs import JsonFormatter
from injector.refresh import Refreshing
from injector.webhook import ActiveConfig, Webhook


class BrokenInjector(Injector):
    def review(self, review):
        raise RuntimeError("renderer exploded with internal detail xyz")


def webhook(on_error: str) -> Webhook:
    active = ActiveConfig(BrokenInjector(InjectorConfig()), "embedded", "embedded")
    config = Refreshing("configuration", lambda: active, 60, ActiveConfig.describe)
    return Webhook(config, None, on_error)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("injector")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_internal_error_denies_with_a_generic_message_and_logs_the_uid(log_stream) -> None:
    body = captured("b-minimal-pod.json")
    uid = orjson.loads(body)["request"]["uid"]
    result = webhook("deny").review(body)
    assert result.status == 200
    response = orjson.loads(result.body)["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 500
    assert response["status"]["message"] == (
        f"the injector could not review this Pod: internal error (request uid {uid}); "
        "see the injector's logs"
    )
    assert b"xyz" not in result.body

    failure, review_line = [line for line in lines(log_stream) if line.get("uid") == uid]
    assert (failure["severity"], failure["message"], failure["uid"]) == (
        "ERROR",
        "review failed",
        uid,
    )
    assert "renderer exploded with internal detail xyz" in failure["stack_trace"]
    assert (review_line["severity"], review_line["reason"]) == ("ERROR", "internal-error")
    assert review_line["decision"] == "denied"


def test_internal_error_can_be_set_to_allow_without_the_proxy(log_stream) -> None:
    body = captured("b-minimal-pod.json")
    uid = orjson.loads(body)["request"]["uid"]
    response = orjson.loads(webhook("allow").review(body).body)["response"]
    assert response == {
        "uid": uid,
        "allowed": True,
        "warnings": [f"the proxy was not injected: the injector failed (request uid {uid})"],
    }


def test_requests_other_than_pod_creates_never_reach_the_failing_path(log_stream) -> None:
    result = webhook("deny").review(captured("g-delete-pod.json"))
    assert orjson.loads(result.body)["response"]["allowed"] is True
    reasons = [line["reason"] for line in lines(log_stream) if "reason" in line]
    assert reasons == ["not-a-pod-create"]
