"""Configuration and URL tokens from Secret Manager: first load, refresh, outages, rotation.

The webhook reads a local endpoint through the real client library. In-process tests drive the
time to live with a fake clock; one test runs the real server process against the same endpoint.
"""

import functools
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
import requests
from admission_data import apply_patch, captured, decode_patch
from fake_secret_manager import FakeSecretManager, running
from server import run_server

from injector.core.config import parse_config
from injector.core.keys import PROXY_CONTAINER
from injector.service import sources
from injector.service import webhook as webhook_module
from injector.service.logs import JsonFormatter
from injector.service.refresh import RETRY_SECONDS, Refreshing
from injector.service.secret_manager import SecretReader
from injector.service.webhook import Webhook

CONFIG = "projects/shop-prod/secrets/injector-config"
TOKENS = "projects/shop-prod/secrets/injector-tokens"
LATEST = "/versions/latest"
IMAGE_1 = "registry.example.com/mesh/proxy:1.0.0"
IMAGE_2 = "registry.example.com/mesh/proxy:2.0.0"
OLD = "old-Token-4f9c1e2b7a5d"
NEW = "new-Token-8d2e5a0c3f61"
TTL = 60.0
DEADLINE = 0.5  # the secret reader's retry deadline in these tests
MINIMAL_POD = captured("b-minimal-pod.json")


def config_with(image: str) -> str:
    return f"proxy:\n  image: {image}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class LogLines(logging.Handler):
    """The injector's log records, as the JSON lines the function writes."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def entries(self) -> list[dict]:
        return [orjson.loads(line) for line in self.lines]

    def errors(self) -> list[dict]:
        return [entry for entry in self.entries() if entry["severity"] == "ERROR"]


@pytest.fixture
def fake() -> Iterator[FakeSecretManager]:
    with running() as fake:
        yield fake


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The clock of the webhook's refreshing configuration and tokens."""
    clock = Clock()
    monkeypatch.setattr(webhook_module, "Refreshing", functools.partial(Refreshing, clock=clock))
    return clock


@pytest.fixture(autouse=True)
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process webhooks give up on Secret Manager after DEADLINE, not the default 5 s."""
    reader = functools.partial(SecretReader, timeout_seconds=DEADLINE)
    monkeypatch.setattr(sources, "SecretReader", reader)


@pytest.fixture
def logs() -> Iterator[LogLines]:
    logger = logging.getLogger("injector")
    handler, level = LogLines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def webhook_on(fake: FakeSecretManager, **secrets: str) -> Webhook:
    environ = {
        "INJECTOR_SECRET_MANAGER_ENDPOINT": fake.endpoint,
        "INJECTOR_REFRESH_SECONDS": str(TTL),
    }
    return Webhook.from_environment(environ | secrets)


def post(webhook: Webhook, body: bytes, token: str | None = None) -> dict:
    answer = webhook.handle(
        "POST", f"/{token or ''}", "application/json", len(body), lambda limit: body[:limit]
    )
    assert answer.status == 200
    return orjson.loads(answer.body)["response"]


def injected_image(response: dict) -> str:
    """The proxy image that the response's patch puts into the minimal Pod."""
    assert response["allowed"] is True
    pod = apply_patch(orjson.loads(MINIMAL_POD)["request"]["object"], decode_patch(response))
    (proxy,) = [c for c in pod["spec"]["initContainers"] if c["name"] == PROXY_CONTAINER]
    return proxy["image"]


def proxy_image(webhook: Webhook, token: str | None = None) -> str:
    return injected_image(post(webhook, MINIMAL_POD, token))


def health(webhook: Webhook, token: str | None = None) -> tuple[int, dict]:
    path = f"/{token}/healthz" if token else "/healthz"
    answer = webhook.handle("GET", path, None, None, lambda limit: b"")
    return answer.status, orjson.loads(answer.body)


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not true within {seconds}s"
        time.sleep(0.02)


def test_the_first_configuration_comes_from_the_secret(fake: FakeSecretManager) -> None:
    version = fake.add_version(CONFIG, config_with(IMAGE_1))
    webhook = webhook_on(fake, INJECTOR_CONFIG_SECRET=CONFIG + LATEST)

    assert health(webhook) == (
        200,
        {
            "status": "ok",
            "config": {
                "source": "secret-manager",
                "version": version,
                "digest": parse_config(config_with(IMAGE_1)).digest(),
            },
        },
    )
    assert proxy_image(webhook) == IMAGE_1


def test_a_new_version_is_used_after_the_time_to_live(
    fake: FakeSecretManager, clock: Clock, logs: LogLines
) -> None:
    fake.add_version(CONFIG, config_with(IMAGE_1))
    webhook = webhook_on(fake, INJECTOR_CONFIG_SECRET=CONFIG + LATEST)
    second = fake.add_version(CONFIG, config_with(IMAGE_2))

    clock.advance(TTL - 1)
    assert proxy_image(webhook) == IMAGE_1
    assert len(fake.requests) == 1

    clock.advance(1)
    eventually(lambda: proxy_image(webhook) == IMAGE_2)
    assert health(webhook)[1]["config"]["version"] == second
    loaded = [entry["loaded"] for entry in logs.entries() if "loaded" in entry]
    assert loaded[-1].startswith(f"secret-manager {second} (digest ")


@pytest.mark.parametrize(("status", "error"), [(403, "Forbidden: 403"), (503, "RetryError")])
def test_an_outage_keeps_the_last_known_good_configuration(
    fake: FakeSecretManager, clock: Clock, logs: LogLines, status: int, error: str
) -> None:
    first = fake.add_version(CONFIG, config_with(IMAGE_1))
    webhook = webhook_on(fake, INJECTOR_CONFIG_SECRET=CONFIG + LATEST)
    fake.fail_with = status

    clock.advance(TTL)
    assert proxy_image(webhook) == IMAGE_1
    eventually(lambda: len(logs.errors()) == 1)
    (entry,) = logs.errors()
    assert entry["message"] == "loading the configuration failed; keeping the last-known-good one"
    assert entry["error"].startswith(f"SecretUnavailable: could not read {CONFIG}{LATEST}: ")
    assert error in entry["error"]
    assert proxy_image(webhook) == IMAGE_1
    assert health(webhook)[0] == 200
    assert health(webhook)[1]["config"]["version"] == first

    fake.fail_with = None
    fake.add_version(CONFIG, config_with(IMAGE_2))
    clock.advance(RETRY_SECONDS)  # a failed load is retried sooner than the TTL
    eventually(lambda: proxy_image(webhook) == IMAGE_2)


def test_a_corrupted_payload_is_rejected(
    fake: FakeSecretManager, clock: Clock, logs: LogLines
) -> None:
    first = fake.add_version(CONFIG, config_with(IMAGE_1))
    webhook = webhook_on(fake, INJECTOR_CONFIG_SECRET=CONFIG + LATEST)
    second = fake.add_version(CONFIG, config_with(IMAGE_2))
    fake.crc = "wrong"

    clock.advance(TTL)
    assert proxy_image(webhook) == IMAGE_1
    eventually(lambda: len(logs.errors()) == 1)
    assert logs.errors()[0]["error"] == (
        f"SecretUnavailable: the payload of {second} failed its CRC32C check"
    )
    assert health(webhook)[1]["config"]["version"] == first
    assert not any(IMAGE_2 in line for line in logs.lines)


def test_an_invalid_new_version_is_rejected(
    fake: FakeSecretManager, clock: Clock, logs: LogLines
) -> None:
    first = fake.add_version(CONFIG, config_with(IMAGE_1))
    webhook = webhook_on(fake, INJECTOR_CONFIG_SECRET=CONFIG + LATEST)
    invalid = "proxy:\n  image: Not An Image\n  env:\n  - {name: API_KEY, value: hush-42}\n"
    second = fake.add_version(CONFIG, invalid)

    clock.advance(TTL)
    assert proxy_image(webhook) == IMAGE_1
    eventually(lambda: len(logs.errors()) == 1)
    message = logs.errors()[0]["error"]
    assert message.startswith(f"ConfigError: {second}: invalid configuration: proxy.image: ")
    assert health(webhook)[1]["config"]["version"] == first
    assert not any("hush-42" in line for line in logs.lines)


@pytest.mark.parametrize(
    ("secret", "error"), [("missing", "NotFound: 404"), ("invalid", "proxy.uid")]
)
def test_without_a_valid_configuration_pods_are_denied_until_one_loads(
    fake: FakeSecretManager, clock: Clock, logs: LogLines, secret: str, error: str
) -> None:
    if secret == "invalid":
        fake.add_version(CONFIG, "proxy: {uid: 0}")
    webhook = webhook_on(fake, INJECTOR_CONFIG_SECRET=CONFIG + LATEST)

    status, body = health(webhook)
    assert (status, body["status"]) == (503, "unavailable")
    assert body["error"].startswith("no valid configuration is loaded: ")
    assert error in body["error"]
    denied = post(webhook, MINIMAL_POD)
    assert denied["allowed"] is False
    assert denied["status"]["code"] == 500
    assert "the injector has no valid configuration" in denied["status"]["message"]
    assert post(webhook, captured("f-update-label.json")) == {
        "uid": orjson.loads(captured("f-update-label.json"))["request"]["uid"],
        "allowed": True,
    }
    (entry,) = logs.errors()
    assert entry["message"] == "loading the configuration failed; none loaded"
    assert error in entry["error"]

    fake.add_version(CONFIG, config_with(IMAGE_1))
    clock.advance(RETRY_SECONDS)
    assert proxy_image(webhook) == IMAGE_1
    assert health(webhook)[0] == 200


def test_tokens_rotate_without_a_restart(
    fake: FakeSecretManager, clock: Clock, logs: LogLines
) -> None:
    fake.add_version(TOKENS, OLD)
    webhook = webhook_on(fake, INJECTOR_TOKENS_SECRET=TOKENS + LATEST)
    bodies: list[bytes] = []

    def status(token: str) -> int:
        answer = webhook.handle("GET", f"/{token}/healthz", None, None, lambda limit: b"")
        bodies.append(answer.body)
        return answer.status

    assert (status(OLD), status(NEW)) == (200, 404)

    fake.add_version(TOKENS, f"{NEW}\n{OLD}\n")
    clock.advance(TTL)
    eventually(lambda: status(NEW) == 200)
    assert status(OLD) == 200

    fake.add_version(TOKENS, f"# rotated\n{NEW}\n")
    clock.advance(TTL)
    eventually(lambda: status(OLD) == 404)
    assert status(NEW) == 200

    fake.add_version(TOKENS, f"{NEW},too-short")
    clock.advance(TTL)
    assert status(NEW) == 200
    eventually(lambda: len(logs.errors()) == 1)
    assert logs.errors()[0]["error"].startswith("InvalidTokens: token 2 is not 16 to 256")
    assert status(NEW) == 200
    response = post(webhook, MINIMAL_POD, NEW)
    assert response["allowed"] is True

    everything = "\n".join([*logs.lines, *(body.decode() for body in bodies), str(response)])
    assert "loaded the URL tokens" in everything
    assert OLD not in everything
    assert NEW not in everything
    assert "too-short" not in everything


def test_a_stalled_secret_manager_does_not_hold_up_reviews(
    fake: FakeSecretManager, clock: Clock, logs: LogLines
) -> None:
    fake.add_version(TOKENS, NEW)
    fake.add_version(CONFIG, config_with(IMAGE_1))
    webhook = webhook_on(
        fake, INJECTOR_CONFIG_SECRET=CONFIG + LATEST, INJECTOR_TOKENS_SECRET=TOKENS + LATEST
    )
    fake.stall()

    clock.advance(TTL)
    started = time.monotonic()
    assert proxy_image(webhook, NEW) == IMAGE_1
    assert time.monotonic() - started < DEADLINE / 2
    eventually(lambda: len(logs.errors()) == 2)
    assert all("Read timed out" in entry["error"] for entry in logs.errors())

    fake.resume()
    fake.add_version(CONFIG, config_with(IMAGE_2))
    clock.advance(RETRY_SECONDS)
    eventually(lambda: proxy_image(webhook, NEW) == IMAGE_2)


def test_the_function_process_reads_and_refreshes_its_secrets(tmp_path: Path) -> None:
    with running() as fake:
        fake.add_version(CONFIG, config_with(IMAGE_1))
        fake.add_version(TOKENS, NEW)
        env = {
            "INJECTOR_CONFIG_SECRET": CONFIG + LATEST,
            "INJECTOR_TOKENS_SECRET": TOKENS + LATEST,
            "INJECTOR_SECRET_MANAGER_ENDPOINT": fake.endpoint,
            "INJECTOR_REFRESH_SECONDS": "1",
        }
        with run_server(tmp_path, env) as server:

            def image() -> str:
                answer = requests.post(
                    f"{server.url}/{NEW}?timeout=10s",
                    data=MINIMAL_POD,
                    headers={
                        "Content-Type": "application/json",
                        "User-Agent": "kube-apiserver-admission",
                    },
                    timeout=10,
                )
                assert answer.status_code == 200
                return injected_image(answer.json()["response"])

            assert image() == IMAGE_1
            second = fake.add_version(CONFIG, config_with(IMAGE_2))
            eventually(lambda: image() == IMAGE_2, seconds=10)
            healthz = requests.get(f"{server.url}/{NEW}/healthz", timeout=10)
            assert healthz.json()["config"]["version"] == second
            assert requests.get(f"{server.url}/{OLD}/healthz", timeout=10).status_code == 404

        messages = [entry["message"] for entry in server.log_entries()]
        assert messages.count("admission review") >= 2
        assert "loaded the configuration" in messages
        assert NEW not in server.log_text()
