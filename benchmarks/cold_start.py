"""Cold start: the cost of importing the function, and the time from starting the server
process to its first injecting review, with the embedded and the Secret Manager configuration.

The measurements take turns, so that other load on the machine hits them alike. Each runs once
more than asked, first, and that run is discarded: it writes the bytecode caches, which a
deployed function has from its build.
"""

import http.client
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import load
from benchmarks.inputs import Request
from benchmarks.servers import REPO, WEBHOOK, environment, free_port, start, stop
from benchmarks.table import ms, table
from injector.core.config import InjectorConfig
from tests.fake_secret_manager import running as fake_secret_manager
from tests.processes import has_exited

FIRST_REVIEW_TIMEOUT = 15.0
SECRET = "projects/p/secrets/s"

# Runs in a fresh interpreter: the import alone, timed from inside (interpreter start excluded),
# in wall-clock and in CPU time.
_TIME_IMPORT = """
import sys, time
wall, cpu = time.perf_counter(), time.process_time()
__import__(sys.argv[1])
sys.stderr.write(f"{time.perf_counter() - wall} {time.process_time() - cpu}\\n")
"""


class NoReview(Exception):
    """The server gave no injecting review in time; the message ends with its last log lines."""


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float | None = None  # the measured process's CPU seconds, where that is the cost


@dataclass(frozen=True)
class Timing:
    """In seconds: the median and best wall time, and the median CPU time if sampled."""

    wall: float
    best_wall: float
    cpu: float | None


@dataclass(frozen=True)
class ColdStart:
    runs: int
    import_framework: Timing
    import_main: Timing
    first_review_embedded: Timing | None  # None: failed, as `failures` says
    first_review_secret: Timing | None
    failures: dict[str, str]

    @property
    def import_difference(self) -> Timing:
        main, framework = self.import_main, self.import_framework
        assert main.cpu is not None and framework.cpu is not None
        return Timing(
            main.wall - framework.wall,
            main.best_wall - framework.best_wall,
            main.cpu - framework.cpu,
        )


def _import(module: str) -> Sample:
    finished = subprocess.run(
        [sys.executable, "-c", _TIME_IMPORT, module],
        cwd=REPO,
        env=environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu = finished.stderr.split()[-2:]
    return Sample(float(wall), float(cpu))


def _is_injected(status: int, body: bytes) -> bool:
    return status == 200 and "patch" in json.loads(body)["response"]


def _first_review(request: Request, log_path: Path, env: dict[str, str]) -> Sample:
    """From starting `functions-framework` to its first answer that injects the Pod."""
    port = free_port()
    started = time.perf_counter()
    process = start(WEBHOOK, port, log_path, env)
    try:
        while time.perf_counter() - started < FIRST_REVIEW_TIMEOUT and not has_exited(process):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                if _is_injected(*load.post(connection, request.body)):
                    return Sample(time.perf_counter() - started)
            except (OSError, http.client.HTTPException):
                pass  # not listening yet
            finally:
                connection.close()
            time.sleep(0.005)
    finally:
        stop(process)
    last_lines = "\n".join(log_path.read_text().rstrip("\n").split("\n")[-3:])
    raise NoReview(f"no injecting review within {FIRST_REVIEW_TIMEOUT:.0f} s:\n{last_lines}")


def _timings(
    measures: dict[str, Callable[[], Sample]], runs: int, failures: dict[str, str]
) -> dict[str, Timing | None]:
    """Each measure's timing; one that fails gives None, and its reason in `failures`."""
    samples: dict[str, list[Sample]] = {name: [] for name in measures}
    for _ in range(runs + 1):
        for name, measure in measures.items():
            if name in failures:
                continue
            try:
                samples[name].append(measure())
            except NoReview as error:
                failures[name] = str(error)
    timings: dict[str, Timing | None] = {}
    for name, kept in samples.items():
        walls = [sample.wall for sample in kept[1:]]
        cpus = [sample.cpu for sample in kept[1:] if sample.cpu is not None]
        cpu = statistics.median(cpus) if cpus else None
        timings[name] = (
            None if name in failures else Timing(statistics.median(walls), min(walls), cpu)
        )
    return timings


def measure(request: Request, runs: int, log_dir: Path) -> ColdStart:
    failures: dict[str, str] = {}
    imports = _timings(
        {name: lambda name=name: _import(name) for name in ("functions_framework", "main")},
        runs,
        failures,
    )
    config = InjectorConfig().model_dump_json(by_alias=True).encode()
    with fake_secret_manager() as fake:
        fake.add_version(SECRET, config)
        secret = {
            "INJECTOR_CONFIG_SECRET": f"{SECRET}/versions/latest",
            "INJECTOR_SECRET_MANAGER_ENDPOINT": fake.endpoint,
        }
        reviews = _timings(
            {
                "embedded config": lambda: _first_review(request, log_dir / "embedded.log", {}),
                "Secret Manager config": lambda: _first_review(
                    request, log_dir / "secret.log", secret
                ),
            },
            runs,
            failures,
        )
    framework, main = imports["functions_framework"], imports["main"]
    assert framework is not None and main is not None  # an import that fails raises
    return ColdStart(
        runs,
        framework,
        main,
        reviews["embedded config"],
        reviews["Secret Manager config"],
        failures,
    )


def report(cold: ColdStart) -> str:
    measured = [
        ("import functions_framework", cold.import_framework),
        ("import main (embedded configuration)", cold.import_main),
        ("  import main - import functions_framework", cold.import_difference),
        ("process start to first injecting review, embedded config", cold.first_review_embedded),
        (
            "process start to first injecting review, Secret Manager config",
            cold.first_review_secret,
        ),
    ]
    rows = [
        [name, "failed", "failed", "-"]
        if timing is None
        else [
            name,
            ms(timing.wall, 1),
            ms(timing.best_wall, 1),
            "-" if timing.cpu is None else ms(timing.cpu, 1),
        ]
        for name, timing in measured
    ]
    header = [f"{cold.runs} fresh process(es) each", "median ms", "best ms", "median CPU ms"]
    lines = [table(header, rows)]
    lines += [f"{name}: {failure}" for name, failure in cold.failures.items()]
    return "\n".join(lines)
