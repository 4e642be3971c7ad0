"""A local Secret Manager endpoint that the real client library (REST transport) can call.

It answers `GET /v1/projects/P/secrets/S/versions/V:access` as Secret Manager does, and its state
is the test's to change: versions and their states, failures, a stall, a wrong or missing CRC32C,
an answer that is not JSON.
"""

import base64
import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

import google_crc32c
import orjson

ACCESS = re.compile(r"^/v1/(projects/[^/]+/secrets/[^/]+)/versions/([^/:]+):access$")

State = Literal["ENABLED", "DISABLED", "DESTROYED"]
STATUS = {403: "PERMISSION_DENIED", 500: "INTERNAL", 503: "UNAVAILABLE"}


@dataclass
class Version:
    data: bytes
    state: State = "ENABLED"


@dataclass
class FakeSecretManager:
    endpoint: str = ""  # http://127.0.0.1:PORT once started
    secrets: dict[str, list[Version]] = field(default_factory=dict)  # versions 1, 2, ...
    fail_with: int | None = None  # answer every request with this HTTP status
    crc: Literal["right", "wrong", "missing"] = "right"
    garbled: bool = False  # answer 200 with a body that is not JSON, as a captive proxy might
    requests: list[str] = field(default_factory=list)  # the paths asked for
    answering: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.answering.set()

    def add_version(self, secret: str, data: str | bytes) -> str:
        """Adds a version to `projects/P/secrets/S` and returns its full name."""
        versions = self.secrets.setdefault(secret, [])
        versions.append(Version(data.encode() if isinstance(data, str) else data))
        return f"{secret}/versions/{len(versions)}"

    def set_state(self, version_name: str, state: State) -> None:
        secret, _, number = version_name.rpartition("/versions/")
        self.secrets[secret][int(number) - 1].state = state

    def stall(self) -> None:
        """Holds every request without answering until resume()."""
        self.answering.clear()

    def resume(self) -> None:
        self.answering.set()

    def access(self, path: str) -> tuple[int, dict]:
        match = ACCESS.match(path)
        if match is None:
            return _error(404, "NOT_FOUND", "no such method")
        secret, wanted = match.groups()
        versions = self.secrets.get(secret)
        if versions is None:
            return _error(404, "NOT_FOUND", f"Secret [{secret}] not found or has no versions.")
        if wanted == "latest":
            enabled = [n for n, v in enumerate(versions, 1) if v.state == "ENABLED"]
            if not enabled:
                return _error(404, "NOT_FOUND", f"Secret [{secret}] has no enabled versions.")
            number = enabled[-1]
        elif wanted.isdigit() and 1 <= int(wanted) <= len(versions):
            number = int(wanted)
        else:
            return _error(
                404, "NOT_FOUND", f"Secret Version [{secret}/versions/{wanted}] not found."
            )
        version = versions[number - 1]
        name = f"{secret}/versions/{number}"
        if version.state != "ENABLED":
            message = f"Secret Version [{name}] is in {version.state} state."
            return _error(400, "FAILED_PRECONDITION", message)
        payload: dict[str, str] = {"data": base64.b64encode(version.data).decode()}
        checksum = google_crc32c.value(version.data)
        if self.crc != "missing":
            payload["dataCrc32c"] = str(checksum if self.crc == "right" else checksum ^ 1)
        return 200, {"name": name, "payload": payload}


def _error(code: int, status: str, message: str) -> tuple[int, dict]:
    return code, {"error": {"code": code, "message": message, "status": status}}


def _handler(fake: FakeSecretManager) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            fake.requests.append(path)
            fake.answering.wait(timeout=30)
            if fake.fail_with is not None:
                status, body = _error(fake.fail_with, STATUS[fake.fail_with], "failing on purpose")
            else:
                status, body = fake.access(path)
            encoded = b"<html>sign in</html>" if fake.garbled else orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(encoded)  # fails when the client gave up on a stalled request

        def log_message(self, format: str, *args: object) -> None:
            pass  # the tests read `requests` instead

    return Handler


@contextlib.contextmanager
def running() -> Iterator[FakeSecretManager]:
    fake = FakeSecretManager()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.resume()
        server.shutdown()
        server.server_close()
        thread.join()
