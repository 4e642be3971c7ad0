"""The application of the data-plane tests: servers of the protocols a transparent proxy must
carry unharmed. It runs as the application container in the Pod sandbox (inbound cases) and as
a server in the node namespace (outbound cases). Once every server listens it prints "ready".

    python traffic_app.py ADDRESSES   # this side's own IPs (the Pod's or the node's), by commas

Given an IPv6 address too (a dual-stack side), the servers of 2525, 8080, 8081, 8082 listen on
:: as well as on 0.0.0.0, and 8090 on each address.

| port  | server |
|-------|--------|
| 2525  | speaks first: "220 traffic-app ready" on connect, then echoes lines |
| 8080  | HTTP/1.1 only (http.server): what it received, as JSON; `?status=N`, `/slow?seconds=N` |
| 8081  | reads until the client half-closes, then answers "received N bytes" |
| 8082  | echoes every chunk (a long-lived connection) |
| 8765  | WebSocket (RFC 6455): echoes every message |
| 50051 | gRPC, HTTP/2 only: the unary method /traffic.Echo/Echo returns its request |
| 8090  | bound to the ADDRESSES only: sends "bound-address" on connect |
| 8091  | bound to 127.0.0.1 only: sends "bound-loopback" on connect |
"""

import hashlib
import json
import socket
import sys
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseRequestHandler, ThreadingTCPServer
from urllib.parse import parse_qs, urlsplit

import grpc
from websockets.sync.server import ServerConnection
from websockets.sync.server import serve as serve_websocket

BANNER = b"220 traffic-app ready\r\n"
GRPC_METHOD = "/traffic.Echo/Echo"


class Banner(BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(BANNER)
        for line in self.request.makefile("rb"):
            self.request.sendall(line)


class UntilHalfClose(BaseRequestHandler):
    def handle(self) -> None:
        received = 0
        while chunk := self.request.recv(65536):
            received += len(chunk)
        self.request.sendall(f"received {received} bytes".encode())


class Echo(BaseRequestHandler):
    def handle(self) -> None:
        while chunk := self.request.recv(65536):
            self.request.sendall(chunk)


def greeting(text: bytes) -> type[BaseRequestHandler]:
    class Greeting(BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(text)

    return Greeting


class Http(BaseHTTPRequestHandler):
    """Answers every request with what arrived: the request line, the headers exactly as
    written (names in their case; values by length and digest) and the body's length."""

    protocol_version = "HTTP/1.1"
    server_version = "traffic-app"

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        if urlsplit(self.path).path == "/slow":
            time.sleep(float(query["seconds"][0]))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self._answer(body, int(query.get("status", ["200"])[0]))

    def do_POST(self) -> None:
        self.do_GET()

    def _answer(self, body: bytes, status: int) -> None:
        report = {
            "server": "traffic-app",
            "method": self.command,
            "request_version": self.request_version,
            "path_length": len(self.path),
            "headers": [
                [name, len(value), hashlib.sha256(value.encode()).hexdigest()[:16]]
                for name, value in self.headers.items()
            ],
            "body_length": len(body),
            "peer": self.client_address[0],
            "peer_port": self.client_address[1],
        }
        answer = json.dumps(report).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


def echo_messages(connection: ServerConnection) -> None:
    for message in connection:
        connection.send(message)


def grpc_server() -> grpc.Server:
    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        "traffic.Echo",
        {"Echo": grpc.unary_unary_rpc_method_handler(echo)},  # bytes in, bytes out
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    if server.add_insecure_port("0.0.0.0:50051") != 50051:
        raise SystemExit("gRPC could not listen on 50051")
    return server


class Server(ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class Ipv6Only:
    """A server of IPv6 alone (IPV6_V6ONLY), beside one of IPv4 on the same port."""

    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


class Server6(Ipv6Only, Server):
    pass


class HttpServer6(Ipv6Only, ThreadingHTTPServer):
    daemon_threads = True


def main(addresses: list[str]) -> None:
    ipv6 = any(":" in address for address in addresses)
    servers: list[ThreadingTCPServer] = []
    for port, handler in ((2525, Banner), (8081, UntilHalfClose), (8082, Echo)):
        servers.append(Server(("0.0.0.0", port), handler))
        servers += [Server6(("::", port), handler)] if ipv6 else []
    for address in addresses:
        kind = Server6 if ":" in address else Server
        servers.append(kind((address, 8090), greeting(b"bound-address")))
    servers.append(Server(("127.0.0.1", 8091), greeting(b"bound-loopback")))
    http = ThreadingHTTPServer(("0.0.0.0", 8080), Http)
    http.daemon_threads = True
    servers += [HttpServer6(("::", 8080), Http)] if ipv6 else []
    websocket = serve_websocket(echo_messages, "0.0.0.0", 8765, compression=None)
    rpc = grpc_server()
    rpc.start()
    for server in (*servers, http, websocket):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    main(sys.argv[1].split(","))
