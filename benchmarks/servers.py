"""functions-framework server processes on loopback, started as the deployed function is."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.processes import end_group, has_exited, start_group

REPO = Path(__file__).resolve().parent.parent
FRAMEWORK = Path(sys.executable).parent / "functions-framework"
PYCACHE = Path(tempfile.gettempdir()) / "injector-benchmarks-pycache"


@dataclass(frozen=True)
class Function:
    name: str
    source: Path
    target: str


WEBHOOK = Function("webhook", REPO / "main.py", "mutate")
ECHO = Function("parse-and-echo", Path(__file__).parent / "echo_function.py", "echo")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without INJECTOR_ settings, plus `extra`, with bytecode caches
    on: the Cloud Functions build compiles the source, so a deployed function starts from them.
    They go to a directory of their own, outside the repository."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INJECTOR_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env.update(extra or {})
    return env


def start(
    function: Function, port: int, log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen:
    """`functions-framework --target=... --source=...` on 127.0.0.1:`port`, leading a process
    group of its own (gunicorn's arbiter and its worker)."""
    command = [str(FRAMEWORK), f"--target={function.target}", f"--source={function.source}"]
    command += ["--host=127.0.0.1", f"--port={port}"]
    with log_path.open("wb") as log:
        return start_group(
            command, cwd=REPO, env=environment(env), stdout=log, stderr=subprocess.STDOUT
        )


def stop(process: subprocess.Popen) -> None:
    """Ends the server's whole process group and waits for it."""
    end_group(process)


@dataclass(frozen=True)
class Server:
    function: Function
    port: int
    process: subprocess.Popen


@contextmanager
def serving(function: Function, log_dir: Path, timeout: float = 30.0) -> Iterator[Server]:
    port = free_port()
    log_path = log_dir / f"{function.target}-{port}.log"
    process = start(function, port, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if has_exited(process) or time.monotonic() > deadline:
                raise RuntimeError(f"{function.name} did not start:\n{log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        yield Server(function, port, process)
    finally:
        stop(process)


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().split("\n"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:  # the field after the state is ppid
            children.append(int(entry.name))
    return children


@dataclass(frozen=True)
class PeakRss:
    """Peak resident set sizes (VmHWM) in KiB: gunicorn's arbiter and its workers."""

    arbiter: int
    workers: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.arbiter + sum(self.workers)


def peak_rss(process: subprocess.Popen) -> PeakRss:
    workers = tuple(_peak_rss_kib(child) for child in _children(process.pid))
    return PeakRss(_peak_rss_kib(process.pid), workers)
