"""Traffic that other meshes' sidecars broke passes through the default proxy unharmed.

One injected Pod (the embedded default configuration) runs in the Pod sandbox with the real
rules and the real Envoy. Each case runs in both directions: outbound, the application (its
uid, in the Pod) calls a server in the node's namespace; inbound, a client in the node's
namespace calls the application. The servers are tests/traffic_app.py on both sides. The cases
run concurrently (the slowest takes 20 s), each test waits for its own.
"""

import hashlib
import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from data_plane import app_pod, images, inject, start_node_app
from lines import lines
from pod_sandbox import PodSandbox, SocketFactory, python_in_image_command, unavailable_reason
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect as websocket_connect

from injector.core.config import InjectorConfig, parse_config

pytestmark = pytest.mark.root

TIMEOUT = 60.0
GRPC_CLIENT = r"""
import grpc, sys

with grpc.insecure_channel(f"{sys.argv[1]}:50051") as channel:
    echo = channel.unary_unary("/traffic.Echo/Echo")
    sys.stdout.write(echo(b"hello over http/2", timeout=30).decode())
"""


@dataclass(frozen=True)
class Side:
    """Where a case's client runs and whom it calls."""

    direction: str
    host: str  # the server's address
    sockets: SocketFactory  # the client's sockets
    run_client: Callable[[list[str]], str]  # runs a Python client program (argv after python)
    own_address: str  # the client's own address

    def connect(self, port: int) -> socket.socket:
        return self.sockets.connect((self.host, port), TIMEOUT)


@dataclass(frozen=True)
class Pod:
    sandbox: PodSandbox
    outbound: Side
    inbound: Side


SHORT_IDLE_TIMEOUT = 6  # seconds, configured for case 15 (the default is an hour)
TIMER_GRANULARITY = 0.05  # seconds


@pytest.fixture(scope="module")
def pod() -> Iterator[Pod]:
    yield from run_pod(InjectorConfig())


@pytest.fixture(scope="module")
def short_idle_pod() -> Iterator[Pod]:
    config = f"proxy: {{envoy: {{idleTimeoutSeconds: {SHORT_IDLE_TIMEOUT}}}}}"
    yield from run_pod(parse_config(config))


def run_pod(config: InjectorConfig) -> Iterator[Pod]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with PodSandbox(inject(app_pod(), config), images(config)) as sandbox:
        sandbox.start()
        sandbox.wait_ready("mesh-proxy")
        sandbox.wait_ready("app")
        start_node_app(sandbox)

        def in_app(argv: list[str]) -> str:
            return sandbox.exec("app", python_in_image_command(argv))

        def on_node(argv: list[str]) -> str:
            command = sandbox.net.in_node([sys.executable, "-B", *argv])
            return subprocess.run(
                command, capture_output=True, text=True, timeout=TIMEOUT, check=True
            ).stdout

        yield Pod(
            sandbox,
            outbound=Side(
                "outbound", sandbox.net.node_ip, sandbox.sockets_of("app"), in_app, sandbox.pod_ip
            ),
            inbound=Side(
                "inbound", sandbox.pod_ip, sandbox.node_sockets, on_node, sandbox.net.node_ip
            ),
        )


# --- HTTP/1 on raw sockets: the bytes sent are exactly the ones written here ------------------


def http_request(
    side: Side,
    request_line: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    port: int = 8080,
    wait_before_sending: float = 0.0,
) -> tuple[int, dict]:
    with side.connect(port) as sock:
        if wait_before_sending:
            time.sleep(wait_before_sending)  # the case itself: a client slow to send
        sock.sendall(head(request_line, headers) + body)
        return read_response(sock)


def head(request_line: str, headers: list[tuple[str, str]]) -> bytes:
    lines = [request_line, *(f"{name}: {value}" for name, value in headers), "", ""]
    return "\r\n".join(lines).encode()


def read_response(sock: socket.socket) -> tuple[int, dict]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    assert response.getheader("Server", "").startswith("traffic-app"), response.getheaders()
    return response.status, json.loads(body)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


# --- the cases -------------------------------------------------------------------------------


def server_speaks_first(side: Side) -> None:
    with side.connect(2525) as sock:
        started = time.monotonic()
        sock.settimeout(1.0)
        banner = sock.recv(100)
        assert banner == b"220 traffic-app ready\r\n", banner
        assert time.monotonic() - started < 1.0


def http_1_0(side: Side) -> None:
    status, report = http_request(side, "GET /old HTTP/1.0", [("Host", "traffic")])
    assert (status, report["request_version"]) == (200, "HTTP/1.0"), report


def large_headers(side: Side) -> None:
    headers = [(f"X-Large-{i:02}", f"{i:02}" * 2000) for i in range(20)]  # 20 x 4 KB
    status, report = http_request(side, "GET /large HTTP/1.1", [("Host", "traffic"), *headers])
    assert status == 200
    received = [tuple(item) for item in report["headers"]]
    assert received == [("Host", 7, digest("traffic"))] + [
        (name, len(value), digest(value)) for name, value in headers
    ]


def header_case(side: Side) -> None:
    headers = [("Host", "traffic"), ("X-Legacy-Token", "t0k3n"), ("x-lower", "a"), ("X-UPPER", "b")]
    _, report = http_request(side, "GET /case HTTP/1.1", headers)
    assert [name for name, _, _ in report["headers"]] == [
        "Host",
        "X-Legacy-Token",
        "x-lower",
        "X-UPPER",
    ]


def slow_client(side: Side) -> None:
    status, _ = http_request(
        side, "GET /slow-client HTTP/1.1", [("Host", "traffic")], wait_before_sending=3.0
    )
    assert status == 200


def expect_continue(side: Side) -> None:
    body = b"b" * 100 * 1024
    headers = [
        ("Host", "traffic"),
        ("Content-Length", str(len(body))),
        ("Expect", "100-continue"),
    ]
    with side.connect(8080) as sock:
        sock.sendall(head("POST /upload HTTP/1.1", headers))
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            chunk = sock.recv(1)
            assert chunk, f"closed after {interim!r}"
            interim += chunk
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        sock.sendall(body)
        status, report = read_response(sock)
    assert (status, report["body_length"]) == (200, len(body)), report


def websocket(side: Side) -> None:
    sock = side.connect(8765)
    with websocket_connect(f"ws://{side.host}:8765/", sock=sock, compression=None) as connection:
        assert connection.response.status_code == 101
        for message in ("first", "x" * 70000, b"\x00\x01binary"):
            connection.send(message)
            assert connection.recv(timeout=TIMEOUT) == message


def half_close(side: Side) -> None:
    with side.connect(8081) as sock:
        sock.sendall(b"q" * 5000)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(1024):
            reply += chunk
    assert reply == b"received 5000 bytes"


def long_response(side: Side) -> None:
    started = time.monotonic()
    status, _ = http_request(side, "GET /slow?seconds=20 HTTP/1.1", [("Host", "traffic")])
    assert status == 200
    assert time.monotonic() - started >= 20


def long_request_line(side: Side) -> None:
    path = "/search?q=" + "z" * 20 * 1024
    started = time.monotonic()
    status, report = http_request(side, f"GET {path} HTTP/1.1", [("Host", "traffic")])
    assert (status, report["path_length"]) == (200, len(path))
    assert time.monotonic() - started < 5, "no proxy timeout is waited for"


def unusual_upgrade(side: Side) -> None:
    headers = [("Host", "traffic"), ("Upgrade", "TLS/1.2"), ("Connection", "Upgrade")]
    status, report = http_request(side, "GET /tls HTTP/1.1", headers)
    assert (status, report["server"]) == (200, "traffic-app")


def grpc_and_http_1(side: Side) -> None:
    assert side.run_client(["-c", GRPC_CLIENT, side.host]) == "hello over http/2"
    status, report = http_request(side, "GET /h1 HTTP/1.1", [("Host", "traffic")])
    assert (status, report["request_version"]) == (200, "HTTP/1.1")


def bound_address_and_loopback(side: Side) -> None:
    with side.connect(8090) as sock:
        assert sock.recv(100) == b"bound-address"
    with side.connect(8091) as sock:  # the proxy accepts; the destination refuses it
        assert receive_or_reset(sock) == b"", "a server bound to loopback was reached"


def long_idle_connection(side: Side) -> None:
    with side.connect(8082) as sock:
        sock.sendall(b"before")
        assert sock.recv(100) == b"before"
        time.sleep(8)  # the case itself: an idle pooled connection
        sock.sendall(b"after")
        assert sock.recv(100) == b"after"


def configured_idle_timeout(side: Side) -> None:
    """Not cut sooner than the configured idle timeout, and cut once it has passed."""
    with side.connect(8082) as sock:
        sock.sendall(b"before")
        assert sock.recv(100) == b"before"
        time.sleep(SHORT_IDLE_TIMEOUT / 2)  # the case itself: idle for less than the timeout
        last_sent = time.monotonic()  # the proxy's last traffic on it is later: the echo
        sock.sendall(b"after")
        assert sock.recv(100) == b"after"
        assert receive_or_reset(sock) == b"", "the proxy closes the idle connection"
        idle = time.monotonic() - last_sent
    # Envoy's timers fire to within a few milliseconds (seen: 2 ms early over 6 s).
    assert SHORT_IDLE_TIMEOUT - TIMER_GRANULARITY <= idle < SHORT_IDLE_TIMEOUT + 20, idle


def receive_or_reset(sock: socket.socket) -> bytes:
    try:
        return sock.recv(100)
    except ConnectionResetError:
        return b""


CASES: dict[str, Callable[[Side], None]] = {
    "01-server-speaks-first": server_speaks_first,
    "02-http-1.0": http_1_0,
    "03-80kb-of-headers": large_headers,
    "04-header-name-case": header_case,
    "05-client-waits-3s": slow_client,
    "06-expect-100-continue": expect_continue,
    "07-websocket": websocket,
    "08-half-close": half_close,
    "09-20s-response": long_response,
    "10-20kb-request-line": long_request_line,
    "11-upgrade-tls-1.2": unusual_upgrade,
    "12-grpc-and-http-1.1": grpc_and_http_1,
    "14-bound-address-and-loopback": bound_address_and_loopback,
    "15-long-idle-connection": long_idle_connection,
}
DIRECTIONS = ("outbound", "inbound")


SHORT_IDLE_CASE = "15-configured-idle-timeout"


@pytest.fixture(scope="module")
def running(pod: Pod, short_idle_pod: Pod) -> Iterator[dict[tuple[str, str], Future]]:
    with ThreadPoolExecutor(max_workers=(len(CASES) + 1) * 2) as executor:
        futures = {
            (name, direction): executor.submit(case, getattr(pod, direction))
            for name, case in CASES.items()
            for direction in DIRECTIONS
        }
        for direction in DIRECTIONS:
            futures[SHORT_IDLE_CASE, direction] = executor.submit(
                configured_idle_timeout, getattr(short_idle_pod, direction)
            )
        yield futures


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("case", [*sorted(CASES), SHORT_IDLE_CASE])
def test_case_passes(running: dict[tuple[str, str], Future], case: str, direction: str) -> None:
    running[case, direction].result(timeout=TIMEOUT * 2)


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


def outbound_connections(sandbox: PodSandbox) -> int:
    """Envoy's count of connections its outbound capture listener took, from its metrics."""
    status, text = sandbox.http_get(sandbox.pod_ip, 15090, "/stats/prometheus")
    assert status == 200
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name == "envoy_tcp_downstream_cx_total" and sample.labels == {
                "envoy_tcp_prefix": "outbound"
            }:
                return int(sample.value)
    raise AssertionError("no outbound connection count in the proxy's metrics")


def test_every_case_went_through_the_proxy(pod: Pod, running: dict) -> None:
    for future in running.values():
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
