"""Traffic that other meshes' sidecars broke passes through the default proxy unharmed; with
HTTP detection on, exactly the changes the README lists happen, and HTTP gets its per-request
metrics and access log.

Three injected Pods run in the Pod sandbox with the real rules and the real Envoy: the embedded
default, the default with a short idle timeout (case 15), and the default with the
`http-detection` annotation. Each case of tests/transparency_cases.py runs in both directions
in the default Pod and, as `WITH_DETECTION` says it holds there, in the detecting one; the
detecting Pod also gets the checks of what its README entry adds. Everything runs concurrently
(the slowest case takes 20 s), each test waits for its own.
"""

import http.client
import json
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from data_plane import access_log
from lines import lines
from pod_sandbox import PodSandbox
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from transparency_cases import (
    CASES,
    DIRECTIONS,
    SHORT_IDLE_TIMEOUT,
    TIMEOUT,
    TIMER_GRANULARITY,
    Connection,
    Pod,
    Side,
    bound_address_and_loopback,
    configured_idle_timeout,
    expect_continue,
    grpc_and_http_1,
    head,
    header_case,
    http_1_0,
    http_request,
    large_headers,
    long_idle_connection,
    long_request_line,
    long_response,
    read_response,
    receive_or_reset,
    run_pod,
    server_speaks_first,
    slow_client,
    unusual_upgrade,
    websocket,
)

from injector.core.config import InjectorConfig, parse_config
from injector.core.envoy import HTTP_DETECTION_TIMEOUT_SECONDS

pytestmark = pytest.mark.root

Json = dict[str, Any]
README = Path(__file__).parent.parent / "README.md"

DEFAULT, SHORT_IDLE, DETECTING = "default", "short-idle", "detecting"
SHORT_IDLE_CASE = "15-configured-idle-timeout"


@pytest.fixture(scope="module")
def pod() -> Iterator[Pod]:
    yield from run_pod(InjectorConfig())


@pytest.fixture(scope="module")
def short_idle_pod() -> Iterator[Pod]:
    config = f"proxy: {{envoy: {{idleTimeoutSeconds: {SHORT_IDLE_TIMEOUT}}}}}"
    yield from run_pod(parse_config(config))


@pytest.fixture(scope="module")
def detecting_pod() -> Iterator[Pod]:
    yield from run_pod(InjectorConfig(), {"injector.dev/http-detection": "true"})


# --- with HTTP detection ---------------------------------------------------------------------

# How the proxy carried a connection, as its access log shows:
HTTP = "http"  # through the HTTP connection manager: one line per request, with its method
TCP = "tcp"  # passed through as bytes: one line for the connection, without a method
DROPPED = "dropped"  # closed by the proxy before reaching the server: no line

FORWARDED_PROTO = ("x-forwarded-proto", "http")


@dataclass(frozen=True)
class WithDetection:
    """What a case does with HTTP detection on."""

    carried: tuple[str, ...]  # how each connection the check makes is carried, in order
    change: str  # how it differs from the default proxy, as the README says; "" when it does not
    check: Callable[[Side], object]  # raises unless the case holds with that change


def waits_for_detection(case: Callable[[Side], object]) -> Callable[[Side], None]:
    """The case holds, and took at least the detection timeout: its client sent nothing that
    decides the protocol, so its connection was passed through only once the timeout passed."""

    def check(side: Side) -> None:
        started = time.monotonic()
        case(side)
        assert time.monotonic() - started >= HTTP_DETECTION_TIMEOUT_SECONDS - TIMER_GRANULARITY

    return check


def idle_connection_waits_for_detection(side: Side) -> None:
    """A first chunk with no line end waits for the detection timeout; then case 15 holds."""
    waits_for_detection(echo_once)(side)
    long_idle_connection(side)


def echo_once(side: Side) -> None:
    with side.connect(8082) as sock:
        sock.sendall(b"before")
        assert sock.recv(100) == b"before"


def half_close_is_reset(side: Side) -> None:
    """Bytes with no line end then a half-close, before the protocol is decided: the proxy
    resets the connection and nothing reaches the server. An HTTP request, then a half-close
    while its answer is pending: reset too (Envoy's HTTP/1 does not half-close)."""
    with side.connect(8081) as sock:
        sock.sendall(b"q" * 5000)
        sock.shutdown(socket.SHUT_WR)
        received = receive_or_reset(sock)
        assert received == b"", f"undecided bytes, then a half-close: {received!r}"
    with side.connect(8080) as sock:
        sock.sendall(head("GET /slow?seconds=3 HTTP/1.1", [("Host", "traffic")]))
        time.sleep(0.5)  # the case itself: a client that half-closes once its request is out
        sock.shutdown(socket.SHUT_WR)
        received = receive_or_reset(sock)
        assert received == b"", f"an HTTP request, then a half-close: {received!r}"


def refused_destination_answers_503(side: Side) -> None:
    """An HTTP request to a port where nothing listens gets the proxy's 503, where the
    pass-through closes the connection it accepted."""
    with side.connect(8091) as sock:  # the server there is bound to loopback only
        sock.sendall(head("GET /refused HTTP/1.1", [("Host", "traffic")]))
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert (response.status, response.getheader("Server")) == (503, None)


def control_headers_are_removed(side: Side) -> None:
    """Envoy's own request headers that would steer it are removed before the server."""
    headers = [
        ("Host", "traffic"),
        ("X-Envoy-Retry-On", "5xx"),
        ("X-Envoy-Upstream-Rq-Timeout-Ms", "1"),
        ("X-Custom", "kept"),
    ]
    status, report = http_request(side, "GET /control HTTP/1.1", headers)
    assert status == 200
    assert [name for name, _, _ in report["headers"]] == ["Host", "X-Custom", FORWARDED_PROTO[0]]


def connections_stay_apart(side: Side) -> None:
    """Requests of different client connections never share a connection to the server, as
    Envoy's connection pools would otherwise have them do."""
    with side.connect(8080) as first, side.connect(8080) as second:
        ports: dict[socket.socket, set[int]] = {first: set(), second: set()}
        for sock in (first, second, first, second):
            sock.sendall(head("GET /apart HTTP/1.1", [("Host", "traffic")]))
            ports[sock].add(read_response(sock)[1]["peer_port"])
    assert ports[first].isdisjoint(ports[second]), ports


def any_method_reaches_the_server(side: Side) -> None:
    """CONNECT (to an HTTP proxy the application calls) and methods Envoy does not know get the
    server's own answer; the traffic app answers them 501."""
    for request_line in ("CONNECT traffic:443 HTTP/1.1", "PURGE /cached HTTP/1.1"):
        with side.connect(8080) as sock:
            sock.sendall(head(request_line, [("Host", "traffic"), ("Connection", "close")]))
            response = http.client.HTTPResponse(sock)
            response.begin()
            assert response.status == 501
            assert response.getheader("Server", "").startswith("traffic-app")


def binary_protocol_passes(side: Side) -> None:
    """A client-first binary protocol (a PostgreSQL SSLRequest) is passed through."""
    message = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
    with side.connect(8082) as sock:
        sock.sendall(message)
        assert sock.recv(100) == message


WITH_DETECTION: dict[str, WithDetection] = {
    "01-server-speaks-first": WithDetection(
        (TCP,),
        "the banner arrives after the detection timeout (0.1 s)",
        waits_for_detection(server_speaks_first),
    ),
    "02-http-1.0": WithDetection((TCP,), "", http_1_0),
    "03-80kb-of-headers": WithDetection(
        (HTTP,),
        "`x-forwarded-proto: http` is added after the headers",
        partial(large_headers, added=FORWARDED_PROTO),
    ),
    "04-header-name-case": WithDetection(
        (HTTP,),
        "`x-forwarded-proto: http` is added after the headers",
        partial(header_case, added=FORWARDED_PROTO),
    ),
    "05-client-waits-3s": WithDetection((TCP,), "", slow_client),
    "06-expect-100-continue": WithDetection((HTTP,), "", expect_continue),
    "07-websocket": WithDetection((HTTP,), "", websocket),
    "08-half-close": WithDetection(
        (DROPPED, HTTP),
        "reset by the proxy, when the half-close comes before the protocol is decided or "
        "after an HTTP request",
        half_close_is_reset,
    ),
    "09-20s-response": WithDetection((HTTP,), "", long_response),
    "10-20kb-request-line": WithDetection((HTTP,), "", long_request_line),
    "11-upgrade-tls-1.2": WithDetection(
        (HTTP,),
        "the server's own answer, to the request without its `Upgrade` and `Connection` "
        "headers (`x-forwarded-proto: http` added)",
        partial(unusual_upgrade, received=["Host", FORWARDED_PROTO[0]]),
    ),
    "12-grpc-and-http-1.1": WithDetection((HTTP,), "", grpc_and_http_1),
    "14-bound-address-and-loopback": WithDetection(
        (TCP, TCP),
        "the greeting arrives after the detection timeout (0.1 s)",
        waits_for_detection(bound_address_and_loopback),
    ),
    "15-long-idle-connection": WithDetection(
        (TCP, TCP),
        "a first chunk without a line end reaches the server after the detection timeout (0.1 s)",
        idle_connection_waits_for_detection,
    ),
    # What else the README says of HTTP detection.
    "http-to-a-refused-port": WithDetection(
        (HTTP,),
        "an HTTP request to a port where nothing listens gets `503` from the proxy",
        refused_destination_answers_503,
    ),
    "envoy-control-headers": WithDetection(
        (HTTP,),
        "Envoy's request headers that steer it (`x-envoy-retry-on`, "
        "`x-envoy-upstream-rq-timeout-ms`, ...) are removed",
        control_headers_are_removed,
    ),
    "connections-stay-apart": WithDetection((HTTP, HTTP), "", connections_stay_apart),
    "connect-and-unknown-methods": WithDetection((HTTP, HTTP), "", any_method_reaches_the_server),
    "binary-protocol": WithDetection((TCP,), "", binary_protocol_passes),
}
assert set(CASES) <= set(WITH_DETECTION)

COUNTED_STATUS = 418  # the one request per direction with this status: the metrics' subject


def counted_request(side: Side) -> None:
    status, _ = http_request(
        side, f"GET /counted?status={COUNTED_STATUS}&token=s3cret HTTP/1.1", [("Host", "traffic")]
    )
    assert status == COUNTED_STATUS


ATTEMPTS = 3
COUNTED = WithDetection((HTTP,), "", counted_request)


@dataclass(frozen=True)
class Observed:
    """The connections a check made, and when it ended (seconds since the epoch)."""

    connections: list[Connection]
    ended: float

    def carried(self, entries: list[Json]) -> list[str]:
        """How the proxy carried each connection, by its access log lines."""
        return [carried(lines_of(entries, c, self.ended)) for c in self.connections]


def last_request(side: Side) -> Observed:
    """A request, on a connection of its own."""
    recording = side.recording()
    assert http_request(recording, "GET /last HTTP/1.1", [("Host", "traffic")])[0] == 200
    assert recording.connections is not None
    return Observed(recording.connections, time.time())


def run_with_detection(expected: WithDetection, side: Side, sandbox: PodSandbox) -> Observed:
    """Runs a check; the connections it made.

    A connection whose first bytes decide how it is carried (`HTTP`, `DROPPED`) is passed
    through (`TCP`) when they reach the proxy after the detection timeout: the design, and
    what a loaded machine can do now and then to a test client, or to Envoy. Such a run says
    nothing of the case, so the check runs again (at most `ATTEMPTS` times in all); any other
    failure is the check's.
    """
    for _ in range(ATTEMPTS):
        recording = side.recording()
        try:
            expected.check(recording)
            failure = None
        except Exception as error:
            failure = error
        assert recording.connections is not None
        observed = Observed(recording.connections, time.time())
        if not detected_late(expected, observed, sandbox):
            break
    if failure is not None:
        raise failure
    return observed


def detected_late(expected: WithDetection, observed: Observed, sandbox: PodSandbox) -> bool:
    """Whether a connection the detection should have taken was passed through instead."""
    awaited = [
        c for c, how in zip(observed.connections, expected.carried, strict=False) if how != DROPPED
    ]
    deadline = time.monotonic() + TIMEOUT
    while True:
        entries = access_log(sandbox)
        if all(lines_of(entries, c, observed.ended) for c in awaited):
            break
        if time.monotonic() > deadline:
            return False  # the test tells what is missing
        time.sleep(0.25)
    found = observed.carried(entries)
    return any(how != TCP and got == TCP for how, got in zip(expected.carried, found, strict=False))


# --- everything, concurrently ------------------------------------------------------------------


@pytest.fixture(scope="module")
def running(
    pod: Pod, short_idle_pod: Pod, detecting_pod: Pod
) -> Iterator[dict[tuple[str, str, str], Future]]:
    """Every case and check, by (pod, name, direction), running."""
    work: dict[tuple[str, str, str], Callable[[], object]] = {}
    for direction in DIRECTIONS:
        for name, case in CASES.items():
            work[DEFAULT, name, direction] = partial(case, getattr(pod, direction))
        side = getattr(short_idle_pod, direction)
        work[SHORT_IDLE, SHORT_IDLE_CASE, direction] = partial(configured_idle_timeout, side)
        side = getattr(detecting_pod, direction)
        for name, expected in WITH_DETECTION.items():
            work[DETECTING, name, direction] = partial(
                run_with_detection, expected, side, detecting_pod.sandbox
            )
        work[DETECTING, "counted", direction] = partial(
            run_with_detection, COUNTED, side, detecting_pod.sandbox
        )
    with ThreadPoolExecutor(max_workers=len(work)) as executor:
        yield {key: executor.submit(run) for key, run in work.items()}


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_case_passes(running: dict, case: str, direction: str) -> None:
    running[DEFAULT, case, direction].result(timeout=TIMEOUT * 2)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_15_the_configured_idle_timeout_holds(running: dict, direction: str) -> None:
    running[SHORT_IDLE, SHORT_IDLE_CASE, direction].result(timeout=TIMEOUT * 2)


def test_the_default_idle_timeout_is_an_hour() -> None:
    assert InjectorConfig().proxy.envoy.idle_timeout_seconds == 3600


def test_13_the_pod_calls_its_own_ip_without_the_proxy(pod: Pod) -> None:
    """Both ends are in the Pod: the connection stays on loopback, so the proxy's outbound
    listener (where a captured one would go) takes none of them."""
    before = outbound_connections(pod.sandbox)
    for _ in range(20):
        with pod.outbound.sockets.connect((pod.sandbox.pod_ip, 8090), TIMEOUT) as sock:
            assert sock.recv(100) == b"bound-address"
    assert outbound_connections(pod.sandbox) == before


@dataclass(frozen=True)
class Metrics:
    families: list[Metric]

    def value(self, family: str, labels: dict[str, str]) -> float:
        """The value of the one sample of the family with exactly these labels."""
        (value,) = [
            sample.value
            for metric in self.families
            if metric.name == family
            for sample in metric.samples
            if sample.labels == labels
        ]
        return value


def prometheus_families(sandbox: PodSandbox) -> Metrics:
    """The proxy's metrics, as the metrics port serves them."""
    status, text = sandbox.http_get(sandbox.pod_ip, 15090, "/stats/prometheus")
    assert status == 200
    return Metrics(list(text_string_to_metric_families(text.decode())))


def outbound_connections(sandbox: PodSandbox) -> int:
    """Envoy's count of connections its outbound capture listener took, from its metrics."""
    metrics = prometheus_families(sandbox)
    return int(metrics.value("envoy_tcp_downstream_cx", {"envoy_tcp_prefix": "outbound"}))


def test_every_case_went_through_the_proxy(pod: Pod, running: dict) -> None:
    for (name, *_), future in running.items():
        if name == DEFAULT:
            future.exception(timeout=TIMEOUT * 2)  # done, whatever the result
    ports = (2525, 8080, 8081, 8082, 8090, 8091, 8765, 50051)
    expected = {("outbound", f"{pod.sandbox.net.node_ip}:{port}") for port in ports} | {
        ("inbound", f"{pod.sandbox.pod_ip}:{port}") for port in ports
    }
    deadline = time.monotonic() + TIMEOUT
    while True:
        logged = {
            (entry["direction"], entry["downstream_local_address"])
            for entry in map(json.loads, complete_lines(pod.sandbox.stdout("mesh-proxy")))
        }
        if expected <= logged or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert expected - logged == set()


def complete_lines(text: str) -> list[str]:
    return lines(text[: text.rfind("\n") + 1])


# --- with HTTP detection: the tests ----------------------------------------------------------


@pytest.fixture(scope="module")
def detection_log(detecting_pod: Pod, running: dict) -> list[Json]:
    """The detecting proxy's access log once everything run there has ended.

    Envoy writes a line when a request or a connection ends, in that order: a request made
    after all the others ended is logged after every line they gave.
    """
    for (name, *_), future in running.items():
        if name == DETECTING:
            future.exception(timeout=TIMEOUT * 2)  # done, whatever the result
    last = [last_request(getattr(detecting_pod, direction)) for direction in DIRECTIONS]
    deadline = time.monotonic() + TIMEOUT
    while True:
        entries = access_log(detecting_pod.sandbox)
        if all(lines_of(entries, o.connections[0], o.ended) for o in last):
            return entries
        assert time.monotonic() < deadline, "the last requests were never logged"
        time.sleep(0.2)


CLOCK_SKEW = 1.0  # seconds: Envoy's times are the same clock's, in milliseconds


def lines_of(entries: list[Json], connection: Connection, ended: float) -> list[Json]:
    """The access log lines of a connection: from its client to its server, started while it
    could have been open (a client port is used again by later connections)."""
    return [
        entry
        for entry in entries
        if (entry["downstream_remote_address"], entry["downstream_local_address"])
        == (connection.client, connection.server)
        and connection.opened - CLOCK_SKEW <= started(entry) <= ended + CLOCK_SKEW
    ]


def started(entry: Json) -> float:
    return datetime.fromisoformat(entry["start_time"].replace("Z", "+00:00")).timestamp()


def carried(logged: list[Json]) -> str:
    """How the proxy carried a connection, by its access log lines."""
    if not logged:
        return DROPPED
    if all("method" in line for line in logged):
        return HTTP
    if len(logged) == 1:
        return TCP
    raise AssertionError(f"both a connection and requests logged: {logged}")


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("name", sorted(WITH_DETECTION))
def test_with_http_detection(
    running: dict, detection_log: list[Json], name: str, direction: str
) -> None:
    """The case holds with its change, and each of its connections was carried as expected."""
    observed = running[DETECTING, name, direction].result(timeout=TIMEOUT * 2)
    assert observed.carried(detection_log) == list(WITH_DETECTION[name].carried)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_http_requests_are_counted_by_status_and_logged(
    detecting_pod: Pod, running: dict, detection_log: list[Json], direction: str
) -> None:
    observed = running[DETECTING, "counted", direction].result(timeout=TIMEOUT * 2)
    (connection,) = observed.connections
    (entry,) = lines_of(detection_log, connection, observed.ended)
    assert entry["direction"] == direction
    # The path without its query, which may hold credentials.
    assert (entry["method"], entry["path"], entry["protocol"]) == ("GET", "/counted", "HTTP/1.1")
    assert (entry["response_code"], entry["response_flags"]) == (COUNTED_STATUS, "-")
    assert entry["bytes_sent"] > 0 and isinstance(entry["duration"], int)
    assert "s3cret" not in json.dumps(detection_log)

    # Per destination cluster and exact code, and per direction and class of code:
    # envoy_cluster_upstream_rq{envoy_response_code="418",envoy_cluster_name="outbound_http"},
    # envoy_http_downstream_rq_xx{envoy_response_code_class="4",
    # envoy_http_conn_manager_prefix="outbound"}.
    metrics = prometheus_families(detecting_pod.sandbox)
    by_code = {
        "envoy_cluster_name": f"{direction}_http",
        "envoy_response_code": str(COUNTED_STATUS),
    }
    assert metrics.value("envoy_cluster_upstream_rq", by_code) == 1
    by_class = {"envoy_http_conn_manager_prefix": direction, "envoy_response_code_class": "4"}
    assert metrics.value("envoy_http_downstream_rq_xx", by_class) >= 1


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_grpc_is_logged_as_http_2_requests(detection_log: list[Json], direction: str) -> None:
    (entry,) = [
        e
        for e in detection_log
        if e["direction"] == direction and e.get("path") == "/traffic.Echo/Echo"
    ]
    assert (entry["method"], entry["protocol"], entry["response_code"]) == ("POST", "HTTP/2", 200)


def test_the_readme_states_each_change() -> None:
    """The README's list of what HTTP detection changes is this module's, case by case."""
    readme = " ".join(README.read_text().split())
    for name, expected in WITH_DETECTION.items():
        if expected.change:
            assert expected.change in readme, name
