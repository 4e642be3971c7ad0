"""`python -m benchmarks [--quick]`: runs every benchmark and prints its table, then the goals."""

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import cold_start, goals, in_process, inputs, machine, over_http
from benchmarks.inputs import SMALL, TYPICAL, VERY_LARGE


@dataclass(frozen=True)
class Plan:
    review_iterations: dict[str, int]  # by request
    http_requests: dict[str, int]  # by request, for each number of connections and function
    cold_start_runs: int


FULL = Plan(
    review_iterations={SMALL: 5000, TYPICAL: 5000, VERY_LARGE: 500},
    http_requests={TYPICAL: 3000, VERY_LARGE: 600},
    cold_start_runs=5,
)
QUICK = Plan(
    review_iterations={SMALL: 200, TYPICAL: 200, VERY_LARGE: 20},
    http_requests={TYPICAL: 64, VERY_LARGE: 32},
    cold_start_runs=1,
)


def _section(title: str, body: str) -> None:
    print(f"\n{title}\n{'-' * len(title)}\n{body}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few iterations: checks the suite")
    plan = QUICK if parser.parse_args().quick else FULL
    started = time.monotonic()
    requests = inputs.load()
    print(f"Machine: {machine.describe()}", flush=True)

    timings = in_process.measure(requests.values(), plan.review_iterations)
    _section(
        "1. In-process review (Webhook.review, embedded configuration, log lines formatted and "
        "written to /dev/null) vs the floor (json.loads + json.dumps of the same body)",
        in_process.report(timings),
    )

    with tempfile.TemporaryDirectory(prefix="benchmarks-") as logs:
        log_dir = Path(logs)
        http = over_http.measure(
            [requests[TYPICAL], requests[VERY_LARGE]], plan.http_requests, log_dir
        )
        _section(
            f"2. HTTP on loopback ({over_http.describe_server()}); "
            "the load comes from keep-alive client threads on the same CPUs",
            over_http.report(http),
        )
        cold = cold_start.measure(requests[TYPICAL], plan.cold_start_runs, log_dir)
    _section("3. Cold start", cold_start.report(cold))
    _section(
        "4. Peak RSS (VmHWM) of the servers after all the HTTP runs",
        over_http.report_memory(http),
    )
    _section("Goals", goals.report(goals.evaluate(timings, http, cold)))
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
