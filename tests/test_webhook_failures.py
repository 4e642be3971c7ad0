"""When reviewing fails inside the webhook: fail closed by default, or allow when configured."""

import io
import logging
import time
from collections.abc import Iterator

import orjson
import pytest
from admission_data import captured
from lines import lines

from injector.core.config import InjectorConfig
from injector.core.engine import Injector
from injector.service.logs import JsonFormatter
from injector.service.refresh import Refreshing
from injector.service.webhook import ActiveConfig, Webhook


class BrokenInjector(Injector):
    def evaluate(self, pod, namespace):
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


def entries(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in lines(stream.getvalue())]


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

    failure, review_line = [line for line in entries(log_stream) if line.get("uid") == uid]
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
    reasons = [line["reason"] for line in entries(log_stream) if "reason" in line]
    assert reasons == ["not-a-pod-create"]


def failing() -> None:
    raise OSError("source unreachable")


def test_tokens_that_never_loaded_make_every_path_503_so_the_failure_policy_applies(
    log_stream,
) -> None:
    active = ActiveConfig(Injector(InjectorConfig()), "embedded", "embedded")
    config = Refreshing("configuration", lambda: active, 60, ActiveConfig.describe)
    tokens = Refreshing("URL tokens", failing, 60, str)
    hook = Webhook(config, tokens, "allow")
    for path in ("/", "/healthz", "/anything-at-all-0123456789"):
        result = hook.handle("POST", path, "application/json", 2, lambda _: b"{}")
        assert (result.status, orjson.loads(result.body)) == (
            503,
            {"error": "the injector is not ready; see its logs"},
        )


def test_health_tells_why_the_configuration_is_stale_while_serving_the_last_good_one() -> None:
    now = [0.0]
    loads = []

    def load() -> ActiveConfig:
        loads.append(now[0])
        if len(loads) > 1:
            failing()
        return ActiveConfig(Injector(InjectorConfig()), "file", "/etc/config.yaml")

    config = Refreshing("configuration", load, 60, ActiveConfig.describe, clock=lambda: now[0])
    hook = Webhook(config, None)
    assert "reload_error" not in orjson.loads(hook.health().body)
    now[0] = 61.0
    config.get()  # due: reloads in the background
    deadline = time.monotonic() + 5
    while config.last_error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    health = orjson.loads(hook.health().body)
    assert health["status"] == "ok"
    assert health["config"]["version"] == "/etc/config.yaml"
    assert health["reload_error"] == "OSError: source unreachable"


def test_health_without_any_configuration_says_why() -> None:
    config = Refreshing("configuration", failing, 60, ActiveConfig.describe)
    result = Webhook(config, None).health()
    assert result.status == 503
    assert orjson.loads(result.body) == {
        "status": "unavailable",
        "error": "no valid configuration is loaded: OSError: source unreachable",
    }
