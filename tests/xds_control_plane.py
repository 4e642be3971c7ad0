"""A test xDS control plane: an ADS server (Envoy's xDS v3, state of the world) over gRPC.

It runs as its own process, so that a test can start it in whichever network namespace a
control plane would be in (the node's, for the Pod sandbox), and is driven over its standard
streams, one JSON object a line:

- commands on stdin: `{"command": "set", "resources": {TYPE_URL: [RESOURCE, ...]}}` replaces
  the whole configuration (resources in Envoy's JSON form, as in a bootstrap) under a new
  version and pushes it on every open stream; `{"command": "stop"}` stops serving (open
  streams are cancelled, new connections refused); `{"command": "start"}` serves again on the
  same port; end of input ends the process;
- events on stdout: `serving` (with the port), `stopped`, `set` (with the version), `stream`
  (a new ADS stream: the node it announced and what its credentials proved), `request` (each
  DiscoveryRequest: an ACK, a NACK with Envoy's error, or a subscription), `response` (each
  DiscoveryResponse sent), `closed` (a stream ended).

The protocol (https://www.envoyproxy.io/docs/envoy/v1.40.0/api-docs/xds_protocol): one
bidirectional stream `AggregatedDiscoveryService.StreamAggregatedResources` carries every
resource type. For each type the client subscribes to, the server answers with *all* resources
of that type (state of the world) under a version and a nonce; the client acknowledges by
repeating the version with that nonce, or rejects (NACK) by keeping its previous version and
adding `error_detail`. A request whose `response_nonce` is not the last one sent for its type
is stale and answered by nothing. The node is sent on a stream's first request.

Credentials: with `--issuer-key` (the PEM public key of the stand-in for the API server's
ServiceAccount token issuer) and `--audience`, a stream must carry `authorization: Bearer
<token>` with a token signed by that key, for that audience and not expired (what a control
plane checks with a TokenReview); others are refused with UNAUTHENTICATED. The `stream` event
names the token's subject, audience and a digest of it, never the token itself.
"""

import argparse
import hashlib
import json
import queue
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

# Resource types, imported so that their JSON form can be read into Any messages.
import envoy.config.cluster.v3.cluster_pb2
import envoy.config.endpoint.v3.endpoint_pb2
import envoy.config.listener.v3.listener_pb2
import envoy.config.route.v3.route_pb2
import envoy.extensions.access_loggers.stream.v3.stream_pb2
import envoy.extensions.filters.http.router.v3.router_pb2
import envoy.extensions.filters.listener.original_dst.v3.original_dst_pb2
import envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2
import envoy.extensions.filters.network.tcp_proxy.v3.tcp_proxy_pb2
import grpc
import jwt
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2, json_format

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
_MESSAGES = {
    LISTENER: envoy.config.listener.v3.listener_pb2.Listener,
    CLUSTER: envoy.config.cluster.v3.cluster_pb2.Cluster,
    ROUTE: envoy.config.route.v3.route_pb2.RouteConfiguration,
    ENDPOINT: envoy.config.endpoint.v3.endpoint_pb2.ClusterLoadAssignment,
}


_output = threading.Lock()  # one event a line, whichever thread reports it


def _emit(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, **fields}) + "\n"
    with _output:
        sys.stdout.write(line)
        sys.stdout.flush()


@dataclass(frozen=True)
class Snapshot:
    version: str
    resources: dict[str, list[any_pb2.Any]]  # by type URL

    def for_request(self, request: discovery_pb2.DiscoveryRequest) -> list[any_pb2.Any]:
        """The resources a request asks for: all of its type for a wildcard subscription (no
        names, or `*`), else those named."""
        resources = self.resources.get(request.type_url, [])
        names = set(request.resource_names)
        if not names or "*" in names:
            return resources
        return [item for item in resources if _resource_name(item) in names]


def _resource_name(item: any_pb2.Any) -> str:
    message = _MESSAGES[item.type_url]()
    item.Unpack(message)
    return getattr(message, "name", "") or getattr(message, "cluster_name", "")


def _pack(type_url: str, resource: dict[str, Any]) -> any_pb2.Any:
    if type_url not in _MESSAGES:
        raise ValueError(f"unknown resource type {type_url}")
    message = json_format.ParseDict(resource, _MESSAGES[type_url]())
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


@dataclass
class Authenticator:
    """Checks the bearer token a stream presents: signature, audience, expiry."""

    public_key: str | None
    audience: str | None

    def check(self, metadata: dict[str, str]) -> tuple[bool, dict[str, Any]]:
        header = metadata.get("authorization")
        if self.public_key is None:
            return True, {"authorization": header is not None}
        if header is None or not header.startswith("Bearer "):
            return False, {"reason": "no bearer token"}
        token = header.removeprefix("Bearer ")
        digest = hashlib.sha256(token.encode()).hexdigest()[:16]
        try:
            claims = jwt.decode(
                token, self.public_key, algorithms=["ES256"], audience=self.audience
            )
        except jwt.InvalidTokenError as error:
            return False, {"reason": f"{type(error).__name__}: {error}", "token_digest": digest}
        return True, {
            "subject": claims["sub"],
            "audience": claims["aud"],
            "expires": claims["exp"],
            "token_digest": digest,
        }


_PUSH = "push"  # queued on every open stream when the configuration changes
_Event = discovery_pb2.DiscoveryRequest | str | None  # a request, a push, or the end


class AggregatedDiscovery(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    """The ADS service: one configuration (a snapshot), served to every stream."""

    def __init__(self, authenticator: Authenticator):
        self._authenticator = authenticator
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._streams: dict[int, queue.Queue[_Event]] = {}
        self._count = 0

    def set(self, resources: dict[str, list[dict[str, Any]]]) -> str:
        """Replaces the configuration under a new version, pushed on every open stream."""
        packed = {url: [_pack(url, item) for item in items] for url, items in resources.items()}
        with self._lock:
            version = str(int(self._snapshot.version) + 1 if self._snapshot else 1)
            self._snapshot = Snapshot(version, packed)
            for events in self._streams.values():
                events.put(_PUSH)
        return version

    def StreamAggregatedResources(  # noqa: N802 (the gRPC method's name)
        self, request_iterator: Iterator[discovery_pb2.DiscoveryRequest], context: Any
    ) -> Iterator[discovery_pb2.DiscoveryResponse]:
        events: queue.Queue[_Event] = queue.Queue()
        with self._lock:
            self._count += 1
            number = self._count
        first = next(request_iterator, None)
        if first is None:
            return
        metadata = {key: value for key, value in context.invocation_metadata()}
        accepted, identity = self._authenticator.check(metadata)
        node = json_format.MessageToDict(first.node)
        _emit("stream", stream=number, node=node, accepted=accepted, **identity)
        if not accepted:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid credentials")
        events.put(first)
        with self._lock:
            self._streams[number] = events
        reader = threading.Thread(
            target=_read_requests, args=(request_iterator, events), daemon=True
        )
        reader.start()
        try:
            yield from self._serve(number, events, context)
        finally:
            with self._lock:
                self._streams.pop(number, None)
            _emit("closed", stream=number)

    def _serve(
        self, number: int, events: "queue.Queue[_Event]", context: Any
    ) -> Iterator[discovery_pb2.DiscoveryResponse]:
        subscribed: dict[str, discovery_pb2.DiscoveryRequest] = {}  # the latest, by type
        sent: dict[str, tuple[str, str]] = {}  # by type: (version, nonce) last sent
        nonces = 0
        while context.is_active():
            event = events.get()
            if event is None:
                return
            with self._lock:
                snapshot = self._snapshot
            due: list[str] = []
            if event == _PUSH:
                due = list(subscribed)
            elif isinstance(event, discovery_pb2.DiscoveryRequest):
                type_url = event.type_url
                last = sent.get(type_url)
                if last is not None and event.response_nonce != last[1]:
                    continue  # stale: it answers an earlier response
                nack = event.error_detail.message if event.HasField("error_detail") else None
                _emit(
                    "request",
                    stream=number,
                    type_url=type_url,
                    version_info=event.version_info,
                    response_nonce=event.response_nonce,
                    resource_names=list(event.resource_names),
                    error=nack,
                )
                previous = subscribed.get(type_url)
                subscribed[type_url] = event
                renamed = previous is not None and set(previous.resource_names) != set(
                    event.resource_names
                )
                if nack is None and (last is None or renamed):
                    due = [type_url]
            if snapshot is None:
                continue
            for type_url in due:
                if type_url in sent and sent[type_url][0] == snapshot.version and event == _PUSH:
                    continue
                nonces += 1
                nonce = str(nonces)
                sent[type_url] = (snapshot.version, nonce)
                response = discovery_pb2.DiscoveryResponse(
                    version_info=snapshot.version,
                    resources=snapshot.for_request(subscribed[type_url]),
                    type_url=type_url,
                    nonce=nonce,
                )
                _emit(
                    "response",
                    stream=number,
                    type_url=type_url,
                    version=snapshot.version,
                    nonce=nonce,
                    resources=len(response.resources),
                )
                yield response


def _read_requests(
    request_iterator: Iterator[discovery_pb2.DiscoveryRequest], events: "queue.Queue[_Event]"
) -> None:
    try:
        for request in request_iterator:
            events.put(request)
    except grpc.RpcError:
        pass  # the stream was cancelled: its end is what follows
    finally:
        events.put(None)


class ControlPlaneServer:
    """The gRPC server, stopped and started again on the same port."""

    def __init__(self, service: AggregatedDiscovery, host: str, port: int, tls: tuple | None):
        self._service = service
        self._host = host
        self.port = port
        self._tls = tls  # (certificate chain PEM, private key PEM), or None for plain text
        self._server: grpc.Server | None = None

    def start(self) -> None:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=32),
            # Refuse to share the port with another process: a second server on it would
            # take some of the connections.
            options=[("grpc.so_reuseport", 0)],
        )
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(self._service, server)
        address = f"{self._host}:{self.port}"
        if self._tls is None:
            port = server.add_insecure_port(address)
        else:
            credentials = grpc.ssl_server_credentials([(self._tls[1], self._tls[0])])
            port = server.add_secure_port(address, credentials)
        if port == 0:
            raise RuntimeError(f"cannot listen on {address}")
        server.start()
        self.port, self._server = port, server
        _emit("serving", port=port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None
        _emit("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve TLS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--issuer-key", help="PEM public key that signs the tokens to accept")
    parser.add_argument("--audience", help="the audience the tokens must be for")
    options = parser.parse_args()
    tls = None
    if options.tls_cert:
        with open(options.tls_cert, "rb") as cert, open(options.tls_key, "rb") as key:
            tls = (cert.read(), key.read())
    public_key = None
    if options.issuer_key:
        with open(options.issuer_key) as key:
            public_key = key.read()
    service = AggregatedDiscovery(Authenticator(public_key, options.audience))
    server = ControlPlaneServer(service, options.host, options.port, tls)
    server.start()
    for line in sys.stdin:
        command = json.loads(line)
        match command["command"]:
            case "set":
                _emit("set", version=service.set(command["resources"]))
            case "stop":
                server.stop()
            case "start":
                server.start()
            case other:
                _emit("error", message=f"unknown command {other!r}")
    server.stop()


if __name__ == "__main__":
    main()
