"""The traffic cases that other meshes' sidecars broke, and an injected Pod to run them in.

Each case runs in one direction (`Side`): outbound, the application (its uid, in the Pod) calls
a server in the node's namespace; inbound, a client in the node's namespace calls the
application. The servers are tests/traffic_app.py on both sides. A case raises if it does not
hold. tests/test_transparency.py runs them against the default proxy and with HTTP detection.
"""

import hashlib
import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest
from data_plane import address, app_pod, images, inject, start_node_app
from pod_sandbox import PodSandbox, SocketFactory, python_in_image_command, unavailable_reason
from websockets.sync.client import connect as websocket_connect

from injector.core.config import InjectorConfig

TIMEOUT = 60.0
GRPC_CLIENT = r"""
import grpc, sys

with grpc.insecure_channel(f"{sys.argv[1]}:50051") as channel:
    echo = channel.unary_unary("/traffic.Echo/Echo")
    sys.stdout.write(echo(b"hello over http/2", timeout=30).decode())
"""


@dataclass(frozen=True)
class Connection:
    """A connection a case made, as Envoy's access log names its ends (`data_plane.address`)."""

    client: str
    server: str
    opened: float  # when, in seconds since the epoch


@dataclass(frozen=True)
class Side:
    """Where a case's client runs and whom it calls."""

    direction: str
    host: str  # the server's address
    sockets: SocketFactory  # the client's sockets
    run_client: Callable[[list[str]], str]  # runs a Python client program (argv after python)
    own_address: str  # the client's own address
    # When a list: each connection made, in order (`recording`).
    connections: list[Connection] | None = None

    def connect(self, port: int) -> socket.socket:
        opened = time.time()
        sock = self.sockets.connect((self.host, port), TIMEOUT)
        if self.connections is not None:
            client = address(*sock.getsockname()[:2])
            self.connections.append(Connection(client, address(self.host, port), opened))
        return sock

    def recording(self) -> "Side":
        """This side, recording the client address of each connection it makes."""
        return replace(self, connections=[])


@dataclass(frozen=True)
class Pod:
    sandbox: PodSandbox
    outbound: Side
    inbound: Side


SHORT_IDLE_TIMEOUT = 6  # seconds, configured for case 15 (the default is an hour)
TIMER_GRANULARITY = 0.05  # seconds


def run_pod(config: InjectorConfig, annotations: dict[str, str] | None = None) -> Iterator[Pod]:
    """The traffic app injected with this configuration (and these Pod annotations), running in
    the Pod sandbox with its counterpart on the node; for a module-scoped fixture."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with PodSandbox(inject(app_pod(annotations), config), images(config)) as sandbox:
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


Header = tuple[str, str]


def http_request(
    side: Side,
    request_line: str,
    headers: list[Header],
    body: bytes = b"",
    port: int = 8080,
    wait_before_sending: float = 0.0,
) -> tuple[int, dict]:
    with side.connect(port) as sock:
        if wait_before_sending:
            time.sleep(wait_before_sending)  # the case itself: a client slow to send
        sock.sendall(head(request_line, headers) + body)
        return read_response(sock)


def head(request_line: str, headers: list[Header]) -> bytes:
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


def large_headers(side: Side, added: Header | None = None) -> None:
    """All arrive, in order; `added`: a header the proxy adds after them."""
    headers = [(f"X-Large-{i:02}", f"{i:02}" * 2000) for i in range(20)]  # 20 x 4 KB
    status, report = http_request(side, "GET /large HTTP/1.1", [("Host", "traffic"), *headers])
    assert status == 200
    received = [tuple(item) for item in report["headers"]]
    assert received == [
        (name, len(value), digest(value))
        for name, value in [("Host", "traffic"), *headers, *([added] if added else [])]
    ]


def header_case(side: Side, added: Header | None = None) -> None:
    """Each name in its case, in order; `added`: a header the proxy adds after them."""
    headers = [("Host", "traffic"), ("X-Legacy-Token", "t0k3n"), ("x-lower", "a"), ("X-UPPER", "b")]
    _, report = http_request(side, "GET /case HTTP/1.1", headers)
    assert [name for name, _, _ in report["headers"]] == [
        "Host",
        "X-Legacy-Token",
        "x-lower",
        "X-UPPER",
        *([added[0]] if added else []),
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


def unusual_upgrade(side: Side, received: list[str] | None = None) -> None:
    """The server's own answer; `received`: the header names it must receive, when not all."""
    headers = [("Host", "traffic"), ("Upgrade", "TLS/1.2"), ("Connection", "Upgrade")]
    status, report = http_request(side, "GET /tls HTTP/1.1", headers)
    assert (status, report["server"]) == (200, "traffic-app")
    names = [name for name, _, _ in report["headers"]]
    assert names == (received or [name for name, _ in headers])


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


CASES: dict[str, Callable[[Side], object]] = {
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
