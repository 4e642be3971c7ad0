"""Runs the webhook as a real server process on loopback, as the API server would reach it."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str  # scheme://127.0.0.1:port, without a path
    process: subprocess.Popen
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text()

    def log_entries(self) -> list[dict]:
        """The JSON lines the server wrote to stdout (its structured logs)."""
        entries = []
        for line in self.log_text().split("\n"):
            if line.startswith("{"):
                entries.append(orjson.loads(line))
        return entries


def wait_for_port(port: int, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not listen within {timeout}s:\n{log_path.read_text()}")


@contextmanager
def run_server(
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    serve: bool = False,
    tls: tuple[Path, Path] | None = None,
    timeout: float = 30.0,
) -> Iterator[Server]:
    """functions-framework --target=mutate; or `python -m injector serve` (always for TLS)."""
    port = free_port()
    if serve or tls is not None:
        command = [sys.executable, "-m", "injector", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port)]
        if tls is not None:
            command += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    else:
        command = [str(BIN / "functions-framework"), "--target=mutate", "--source=main.py"]
        command += ["--host=127.0.0.1", f"--port={port}"]
    scheme = "https" if tls is not None else "http"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("INJECTOR_")}
    environment.update(env or {})
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO, env=environment, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, process, log_path, timeout)
        yield Server(f"{scheme}://127.0.0.1:{port}", process, log_path)
    finally:
        process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
