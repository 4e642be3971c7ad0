"""The URL token never leaves the function: no answer and no log line carries it.

The function runs as Terraform deploys it, with its tokens in Secret Manager (a local endpoint
here), and is asked for every answer of its HTTP contract (README.md, "The HTTP contract"). After
each exchange, neither the response (status line, headers, body) nor anything the server process
has written so far holds a token, the path segment that was sent, or any 16 characters of either.
"""

import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import requests
from admission_data import captured
from fake_secret_manager import FakeSecretManager, running
from server import Server, run_server

TOKEN_SECRET = "projects/shop-prod/secrets/mesh-injector-tokens"
BODY_LIMIT = 8 * 1024 * 1024  # the contract's cap on a request body
FRAGMENT = 16  # characters: the shortest token the function accepts
JSON = "application/json"
POD = captured("b-minimal-pod.json")
UPDATE = captured("f-update-label.json")


def new_token() -> str:
    """A token as Terraform makes one: 48 characters from [A-Za-z0-9] (random_password)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(48))


TOKENS = (new_token(), new_token(), new_token())  # the three slots of token_rotation.tf
CURRENT = TOKENS[1]
# Wrong tokens a caller might send: one character off, one short, one too long.
NEAR_MISS = ("A" if CURRENT[0] != "A" else "B") + CURRENT[1:]
WRONG = (NEAR_MISS, CURRENT[:-1], CURRENT + "x")


def fragments(secret: str) -> set[str]:
    return {secret[start : start + FRAGMENT] for start in range(len(secret) - FRAGMENT + 1)}


def leaks(text: str, secret_values: tuple[str, ...]) -> list[str]:
    """The 16-character pieces of the secret values that appear in the text."""
    return sorted({piece for value in secret_values for piece in fragments(value) if piece in text})


def response_text(response: requests.Response) -> str:
    headers = "".join(f"{name}: {value}\n" for name, value in response.headers.items())
    body = response.content.decode("latin-1")
    return f"{response.status_code} {response.reason}\n{headers}\n{body}"


def over_the_limit() -> Iterator[bytes]:
    """A body one mebibyte past the limit, sent chunked (no Content-Length)."""
    for _ in range(BODY_LIMIT // (1024 * 1024) + 1):
        yield b" " * (1024 * 1024)


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str  # {token} is a valid token; {wrong} each wrong one in turn
    status: int
    body: bytes | None = None
    content_type: str | None = JSON
    chunked: bool = False
    reviews: bool = False  # the function logs one review line for it

    def send(self, server: Server, token: str) -> requests.Response:
        data = over_the_limit() if self.chunked else self.body
        headers = {"Content-Type": self.content_type} if self.content_type else {}
        return requests.request(
            self.method,
            server.url + self.path.format(token=token),
            data=data,
            headers={"User-Agent": "kube-apiserver-admission", **headers},
            timeout=30,
        )


# Every answer of the contract, on the token path and beside it.
CONTRACT = {
    "review-200": Exchange("POST", "/{token}?timeout=10s", 200, POD, reviews=True),
    "not-a-pod-create-200": Exchange("POST", "/{token}", 200, UPDATE, reviews=True),
    "more-segments-200": Exchange("POST", "/{token}/{token}", 200, POD, reviews=True),
    "healthz-200": Exchange("GET", "/{token}/healthz", 200),
    "healthz-head-200": Exchange("HEAD", "/{token}/healthz", 200),
    "no-token-404": Exchange("POST", "/", 404, POD),
    "healthz-without-token-404": Exchange("GET", "/healthz", 404),
    "token-in-the-query-404": Exchange("POST", "/?token={token}", 404, POD),
    "token-as-second-segment-404": Exchange("POST", "/mutate/{token}", 404, POD),
    "get-405": Exchange("GET", "/{token}", 405),
    "put-405": Exchange("PUT", "/{token}", 405, POD),
    "delete-405": Exchange("DELETE", "/{token}", 405),
    "trace-405": Exchange("TRACE", "/{token}", 405, content_type=None),
    "post-healthz-405": Exchange("POST", "/{token}/healthz", 405, POD),
    "text-415": Exchange("POST", "/{token}", 415, POD, content_type="text/plain"),
    "content-length-413": Exchange("POST", "/{token}", 413, b" " * (BODY_LIMIT + 1)),
    "chunked-413": Exchange("POST", "/{token}", 413, chunked=True),
    "not-json-400": Exchange("POST", "/{token}", 400, b'{"request": '),
    "not-a-review-400": Exchange("POST", "/{token}", 400, b'{"kind": "Pod", "apiVersion": "v1"}'),
}
WRONG_TOKEN = {
    "wrong-token-post-404": Exchange("POST", "/{token}", 404, POD),
    "wrong-token-healthz-404": Exchange("GET", "/{token}/healthz", 404),
    "wrong-token-get-404": Exchange("GET", "/{token}", 404),
    "wrong-token-chunked-404": Exchange("POST", "/{token}", 404, chunked=True),
}


def token_env(fake: FakeSecretManager, payload: str) -> dict[str, str]:
    """The environment Terraform gives the function, with a token secret holding `payload`.

    Each call makes its own secret, so that no server reads another's tokens when it refreshes.
    """
    secret = f"{TOKEN_SECRET}-{len(fake.secrets)}"
    fake.add_version(secret, payload)
    return {
        "INJECTOR_TOKENS_SECRET": f"{secret}/versions/latest",
        "INJECTOR_SECRET_MANAGER_ENDPOINT": fake.endpoint,
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSecretManager]:
    with running() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def deployed(fake: FakeSecretManager, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = token_env(fake, "\n".join(TOKENS))  # as tokens_payload in secrets.tf
    with run_server(tmp_path_factory.mktemp("deployed"), env) as server:
        yield server


def assert_kept_secret(response: requests.Response, server: Server, sent: str) -> None:
    secret_values = (*TOKENS, sent)
    assert not leaks(response_text(response), secret_values), "the response carries a token"
    assert not leaks(server.log_text(), secret_values), "the server logged a token"


def test_the_server_holds_the_tokens_it_must_not_show(deployed: Server) -> None:
    loaded = [e for e in deployed.log_entries() if e["message"] == "loaded the URL tokens"]
    assert [entry["loaded"] for entry in loaded] == ["3 token(s)"]
    for token in TOKENS:
        assert requests.get(f"{deployed.url}/{token}/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("name", CONTRACT)
def test_no_answer_or_log_line_carries_the_token(deployed: Server, name: str) -> None:
    exchange = CONTRACT[name]
    response = exchange.send(deployed, CURRENT)
    assert response.status_code == exchange.status
    assert_kept_secret(response, deployed, CURRENT)
    if exchange.reviews:
        uid = orjson.loads(exchange.body or b"{}")["request"]["uid"]
        lines = [e for e in deployed.log_entries() if e.get("uid") == uid]
        assert lines and lines[-1]["message"] == "admission review"


@pytest.mark.parametrize("wrong", WRONG, ids=["one-off", "one-short", "one-long"])
@pytest.mark.parametrize("name", WRONG_TOKEN)
def test_a_wrong_token_is_neither_echoed_nor_logged(
    deployed: Server, name: str, wrong: str
) -> None:
    exchange = WRONG_TOKEN[name]
    response = exchange.send(deployed, wrong)
    assert response.status_code == exchange.status
    assert response.json() == {"error": "not found"}
    assert_kept_secret(response, deployed, wrong)


@pytest.mark.parametrize(
    "payload",
    [f"{TOKENS[0]}\nnot a token!\n", f"{TOKENS[0]},{TOKENS[1][:10]}"],
    ids=["a-line-that-is-no-token", "a-token-too-short"],
)
def test_tokens_that_cannot_be_loaded_are_not_logged_and_every_path_is_503(
    fake: FakeSecretManager, tmp_path: Path, payload: str
) -> None:
    with run_server(tmp_path, token_env(fake, payload)) as server:
        for path in (f"/{TOKENS[0]}", f"/{TOKENS[0]}/healthz", "/"):
            response = requests.post(
                server.url + path, data=POD, headers={"Content-Type": JSON}, timeout=30
            )
            assert response.status_code == 503
            assert_kept_secret(response, server, TOKENS[0])
        failures = [e for e in server.log_entries() if e["severity"] == "ERROR"]
        assert any(e["message"].startswith("loading the URL tokens failed") for e in failures)


def test_without_a_configuration_the_answers_keep_the_token_secret(
    fake: FakeSecretManager, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("proxy: {uid: -5}\n")
    env = {**token_env(fake, CURRENT), "INJECTOR_CONFIG_FILE": str(config)}
    with run_server(tmp_path, env) as server:
        health = requests.get(f"{server.url}/{CURRENT}/healthz", timeout=10)
        assert health.status_code == 503
        assert_kept_secret(health, server, CURRENT)

        review = requests.post(
            f"{server.url}/{CURRENT}", data=POD, headers={"Content-Type": JSON}, timeout=30
        )
        assert review.status_code == 200
        assert review.json()["response"]["allowed"] is False
        assert_kept_secret(review, server, CURRENT)
