"""The webhook over HTTP beside the parse-and-echo function: both served by functions-framework
(gunicorn, as deployed) on loopback, loaded in turn from this process, in the same run."""

import http.client
import json
import os
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from benchmarks import load
from benchmarks.inputs import Request
from benchmarks.servers import ECHO, WEBHOOK, PeakRss, Server, peak_rss, serving
from benchmarks.table import ms, table

CONNECTIONS = (1, 8, 32)


@dataclass(frozen=True)
class HttpRun:
    request: str
    connections: int
    function: str
    result: load.LoadResult


@dataclass(frozen=True)
class HttpResults:
    runs: list[HttpRun]
    peak_rss: dict[str, PeakRss]  # by function, after all the runs

    def find(self, request: str, connections: int, function: str) -> load.LoadResult:
        for run in self.runs:
            if (run.request, run.connections, run.function) == (request, connections, function):
                return run.result
        raise KeyError((request, connections, function))


def _check_answers(server: Server, request: Request) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    status, body = load.post(connection, request.body)
    connection.close()
    if status != 200:
        raise RuntimeError(f"{server.function.name} answered {status}: {body[:300]!r}")
    if server.function is WEBHOOK and "patch" not in json.loads(body)["response"]:
        raise RuntimeError(f"the webhook did not inject the {request.name} Pod: {body[:300]!r}")


def measure(requests: Sequence[Request], counts: dict[str, int], log_dir: Path) -> HttpResults:
    """For each request and number of connections, `counts[request.name]` requests to each."""
    runs = []
    with ExitStack() as stack:
        servers = [stack.enter_context(serving(f, log_dir)) for f in (WEBHOOK, ECHO)]
        for request in requests:
            for server in servers:
                _check_answers(server, request)
            for connections in CONNECTIONS:
                for server in servers:
                    result = load.run(server.port, request.body, connections, counts[request.name])
                    runs.append(HttpRun(request.name, connections, server.function.name, result))
        rss = {server.function.name: peak_rss(server.process) for server in servers}
    return HttpResults(runs, rss)


def describe_server() -> str:
    threads = os.environ.get("THREADS", str((os.cpu_count() or 1) * 4))
    workers = os.environ.get("WORKERS", "1")
    return f"gunicorn gthread: {workers} worker(s), {threads} threads each (functions-framework)"


def report(results: HttpResults) -> str:
    header = ["request", "connections", "function", "requests", "errors", "req/s"]
    header += ["p50 ms", "p99 ms", "p50 vs echo", "req/s vs echo"]
    rows = []
    for run in results.runs:
        result = run.result
        compared = ["", ""]
        if run.function != ECHO.name:
            echo = results.find(run.request, run.connections, ECHO.name)
            compared = [
                f"{result.latency.p50 / echo.latency.p50:.2f}x",
                f"{result.per_second / echo.per_second:.0%}",
            ]
        rows.append(
            [
                run.request,
                str(run.connections),
                run.function,
                str(result.requests),
                str(result.errors),
                f"{result.per_second:.0f}",
                ms(result.latency.p50, 2),
                ms(result.latency.p99, 2),
                *compared,
            ]
        )
    return table(header, rows)


def report_memory(results: HttpResults) -> str:
    header = ["function", "arbiter MiB", "workers MiB", "total MiB"]
    rows = [
        [
            name,
            f"{rss.arbiter / 1024:.1f}",
            " + ".join(f"{worker / 1024:.1f}" for worker in rss.workers) or "-",
            f"{rss.total / 1024:.1f}",
        ]
        for name, rss in results.peak_rss.items()
    ]
    return table(header, rows)
