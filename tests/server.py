"""Runs the webhook as a real server process on loopback, as the API server would reach it."""

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
from processes import end_group, has_exited, start_group

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
        if has_exited(process):
            raise RuntimeError(f"the server exited early:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not listen within {timeout}s:\n{log_path.read_text()}")


SERVING = re.compile(r"^serving on (https?://\S+)/$", re.MULTILINE)


def wait_for_url(process: subprocess.Popen, log_path: Path, timeout: float) -> str:
    """The URL `injector serve` prints once it listens (scheme://host:port, without a path)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if printed := SERVING.search(log_path.read_text()):
            return printed.group(1)
        if has_exited(process):
            raise RuntimeError(f"the server exited early:\n{log_path.read_text()}")
        time.sleep(0.05)
    raise RuntimeError(f"the server printed no URL within {timeout}s:\n{log_path.read_text()}")


@contextmanager
def run_server(
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    serve: bool = False,
    tls: tuple[Path, Path] | None = None,
    timeout: float = 30.0,
) -> Iterator[Server]:
    """functions-framework --target=mutate on a free port, as deployed; or `python -m injector
    serve` (always for TLS) on port 0, at the URL it prints. Either runs in a process group of
    its own, ended as a whole when the context exits."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("INJECTOR_")}
    environment.update(env or {})
    if serve or tls is not None:
        port = 0
        command = [sys.executable, "-m", "injector", "serve", "--host", "127.0.0.1", "--port", "0"]
        if tls is not None:
            command += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    else:
        port = free_port()
        command = [str(BIN / "functions-framework"), "--target=mutate", "--source=main.py"]
        command += ["--host=127.0.0.1", f"--port={port}"]
    log_path = tmp_path / f"server-{port or 'serve'}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log_file:
        process = start_group(
            command, cwd=REPO, env=environment, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        if port:
            wait_for_port(port, process, log_path, timeout)
            url = f"http://127.0.0.1:{port}"
        else:
            url = wait_for_url(process, log_path, timeout)
        yield Server(url, process, log_path)
    finally:
        end_group(process)
