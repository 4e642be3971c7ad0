"""A closed-loop load generator: N threads, each on its own keep-alive connection, sending a
fixed number of requests between them and timing each one."""

import http.client
import threading
import time
from dataclasses import dataclass

from benchmarks.stats import Percentiles, percentiles

# As the API server calls a webhook whose URL has no path of its own.
PATH = "/?timeout=10s"
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, */*",
    "User-Agent": "kube-apiserver-admission",
}
WARMUP_PER_CONNECTION = 1


def post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
    connection.request("POST", PATH, body, HEADERS)
    response = connection.getresponse()
    return response.status, response.read()


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latency: Percentiles  # of the successful requests, in seconds

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


class _Client(threading.Thread):
    def __init__(self, port: int, body: bytes, requests: int, start: threading.Barrier):
        super().__init__(daemon=True)
        self.port, self.body, self.requests, self.start_together = port, body, requests, start
        self.latencies: list[float] = []
        self.errors = 0

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            for _ in range(WARMUP_PER_CONNECTION):
                post(connection, self.body)
        except (OSError, http.client.HTTPException):
            connection.close()  # the timed requests reconnect, and count their own failures
        self.start_together.wait()
        for _ in range(self.requests):
            started = time.perf_counter()
            try:
                status, _ = post(connection, self.body)
            except (OSError, http.client.HTTPException):
                connection.close()  # the next request reconnects
                status = None
            if status == 200:
                self.latencies.append(time.perf_counter() - started)
            else:
                self.errors += 1
        connection.close()


def run(port: int, body: bytes, connections: int, requests: int) -> LoadResult:
    """Sends `requests` POSTs of `body` over `connections` connections at once."""
    start = threading.Barrier(connections + 1, timeout=60)
    share, rest = divmod(requests, connections)
    clients = [_Client(port, body, share + int(i < rest), start) for i in range(connections)]
    for client in clients:
        client.start()
    start.wait()
    started = time.perf_counter()
    for client in clients:
        client.join()
    seconds = time.perf_counter() - started
    latencies = [latency for client in clients for latency in client.latencies]
    errors = sum(client.errors for client in clients)
    if len(latencies) < 2:
        raise RuntimeError(f"{errors} of {requests} requests to port {port} failed")
    return LoadResult(requests, errors, seconds, percentiles(latencies))
