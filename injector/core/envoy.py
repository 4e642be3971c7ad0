"""The injected Envoy's bootstrap and command line: a transparent TCP pass-through.

Envoy reads the bootstrap (an `envoy.config.bootstrap.v3.Bootstrap`, here as compact JSON,
which is YAML) from `--config-yaml`, so the proxy needs nothing but its container: no file,
volume or ConfigMap. The bootstrap depends only on `BootstrapParameters`, never on the Pod: the
per-Pod values (node id and cluster) come from Kubernetes' `$(VAR)` expansion of the container's
arguments, using the Downward API variables `POD_NAME` and `POD_NAMESPACE`.

What the proxy does (Envoy v3 API; https://www.envoyproxy.io/docs/envoy/v1.40.0/):
- the outbound and inbound capture listeners read the connection's original destination
  (`envoy.filters.listener.original_dst`, `SO_ORIGINAL_DST` of the iptables `REDIRECT`) and pass
  the bytes through unchanged (`envoy.filters.network.tcp_proxy`) to it, through an
  `ORIGINAL_DST` cluster; inbound connections go on to the Pod IP and the application's port;
- a connection that reaches a capture port without having been redirected (it would come back
  to the same listener forever) is closed at once;
- one HTTP listener on the health and the metrics port answers `GET <health path>` from the
  admin `/ready`, which is 200 only once the server is initialized (LIVE), and serves the
  admin `/stats/prometheus`; the admin interface itself listens on 127.0.0.1 only;
- every proxied connection is logged on stdout as one JSON object when it closes
  (`ACCESS_LOG_FIELDS`);
- with HTTP detection (an option, off by default), the capture listeners also run
  `envoy.filters.listener.http_inspector`: a connection whose first line is HTTP/1.1, or that
  starts with the HTTP/2 preface (h2c), goes to the HTTP connection manager, which proxies
  each request to the original destination, counts it by response code and logs it; any other
  connection, and one that has sent nothing within `HTTP_DETECTION_TIMEOUT_SECONDS`, is
  passed through as above. What that changes is tested in tests/test_transparency.py;
- each listener takes the captured IP families: it listens on 0.0.0.0 for IPv4 and on :: for
  IPv6 (a socket of its own, IPv6 only, as Envoy binds :: without `ipv4_compat`), at each of its
  ports (`Listener.additional_addresses`), so a connection reaches its original destination in
  its own family. Only the families captured are listened on: Envoy refuses any IPv6 address on
  a kernel without IPv6.

With a control plane (`BootstrapParameters.control_plane`), the health and metrics listener
and the admin cluster stay static and everything else comes over ADS (`injector.core.xds`):
the capture listeners are the control plane's to serve, for every captured family. The node
metadata then carries the Pod's identity, as `$(VAR)` references that are the one part of the
bootstrap text left for the kubelet to expand, and the captured families and ports, so that the
control plane knows which listeners to serve.
"""

import json
from dataclasses import dataclass
from typing import Any

from injector.core import xds
from injector.core.config import ControlPlaneConfig

Json = dict[str, Any]

ENVOY_BINARY = "/usr/local/bin/envoy"  # in both envoyproxy/envoy and its distroless images
# Downward API variables of the proxy container, expanded by the kubelet in its arguments.
NODE_ID = "$(POD_NAME).$(POD_NAMESPACE)"
NODE_CLUSTER = "$(POD_NAMESPACE)"

OUTBOUND = "outbound"
INBOUND = "inbound"
PASSTHROUGH_CLUSTER = "passthrough"  # ORIGINAL_DST: connects to the original destination
BLACKHOLE_CLUSTER = "blackhole"  # no endpoints: connections routed here are closed
ADMIN_CLUSTER = "admin"
ADMIN_LISTENER = "health_metrics"  # on the health and the metrics port
READY_PATH = "/ready"  # admin: 200 "LIVE" once initialized, 503 before and while draining
PROMETHEUS_PATH = "/stats/prometheus"
# Circuit breaker thresholds at the largest value the API allows (uint32): a pass-through must
# not refuse the application's connections beyond Envoy's default of 1024 per cluster.
UNLIMITED = 4294967295

# The access log line of a proxied connection, in Envoy's command operators (each a typed JSON
# value): where it came from, its original destination, bytes from the downstream
# (received) and to it (sent), its duration in milliseconds and Envoy's response flags ("-"
# when none; "UF" when the destination refused, for example).
ACCESS_LOG_FIELDS = {
    "start_time": "%START_TIME%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "duration": "%DURATION%",
    "response_flags": "%RESPONSE_FLAGS%",
}

# With HTTP detection (`BootstrapParameters.http_detection`):
# - the application protocols that `envoy.filters.listener.http_inspector` names and that are
#   proxied request by request (it names HTTP/1.0 `http/1.0`: that is passed through as TCP);
HTTP_PROTOCOLS = ["http/1.1", "h2c"]
# - how long the listener waits for the client's first bytes to tell; a client that has sent
#   nothing by then (of a server that speaks first) is passed through, and so is one whose
#   first line has not ended by then;
HTTP_DETECTION_TIMEOUT_SECONDS = 0.1
# - Envoy's largest header size (KiB; the default is 60), each way;
MAX_HEADERS_KB = 8192
# - every Upgrade value but websocket, in any case (RE2, which has no negative lookahead): its
#   Upgrade header is dropped and the request proxied as a plain one, which RFC 9110 section
#   7.8 lets a server do (Envoy answers 403 to an upgrade it does not proxy);
NOT_WEBSOCKET = (
    "(?i)[^w].*|w([^e].*)?|we([^b].*)?|web([^s].*)?|webs([^o].*)?|webso([^c].*)?"
    "|websoc([^k].*)?|websock([^e].*)?|websocke([^t].*)?|websocket.+"
)
# - the access log line of each request: the connection's fields (bytes count the bodies) and
#   its method, path without the query (which may carry credentials), protocol (HTTP/1.1,
#   HTTP/2) and response code (0 when there was none).
HTTP_LOG_FIELDS = {
    "method": "%REQ(:METHOD)%",
    "path": "%PATH(NQ)%",
    "protocol": "%PROTOCOL%",
    "response_code": "%RESPONSE_CODE%",
}


@dataclass(frozen=True)
class BootstrapParameters:
    """Everything the bootstrap depends on. Ports are TCP ports of the Pod."""

    admin_port: int
    outbound_port: int
    inbound_port: int
    health_port: int
    health_path: str  # the path the probes ask on the health port, e.g. /healthz/ready
    metrics_port: int
    idle_timeout_seconds: int  # a proxied connection idle this long is closed; 0: never
    connect_timeout_seconds: int  # to the original destination
    ip_families: tuple[str, ...] = ("IPv4", "IPv6")  # the families the listeners take
    control_plane: ControlPlaneConfig | None = None  # None: the pass-through
    # The capture listeners detect HTTP/1.1 and h2c and proxy it request by request.
    http_detection: bool = False


# The address that takes every connection of a family (Envoy binds :: IPv6-only by default).
ANY_ADDRESS = {"IPv4": "0.0.0.0", "IPv6": "::"}


def _typed(type_name: str, **fields: Any) -> Json:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def _address(address: str, port: int) -> Json:
    return {"socket_address": {"address": address, "port_value": port}}


def _listen(ports: tuple[int, ...], families: tuple[str, ...]) -> Json:
    """A listener's `address` and `additional_addresses`: every family at every port."""
    addresses = [_address(ANY_ADDRESS[family], port) for port in ports for family in families]
    listen: Json = {"address": addresses[0]}
    if addresses[1:]:
        listen["additional_addresses"] = [{"address": address} for address in addresses[1:]]
    return listen


def _tcp_proxy(stat_prefix: str, cluster: str, **fields: Any) -> Json:
    config = _typed(
        "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        stat_prefix=stat_prefix,
        cluster=cluster,
        **fields,
    )
    return {"name": "envoy.filters.network.tcp_proxy", "typed_config": config}


def _stdout_access_log(direction: str, fields: Json) -> Json:
    """An access log writing one JSON object per line on stdout: the direction and `fields`
    (names to Envoy's command operators)."""
    return {
        "name": "envoy.access_loggers.stdout",
        "typed_config": _typed(
            "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            log_format={"json_format": {"direction": direction, **fields}},
        ),
    }


def _pass_through(direction: str, idle_timeout_seconds: int) -> Json:
    """Bytes both ways to the original destination, each connection logged as it closes."""
    return _tcp_proxy(
        direction,
        PASSTHROUGH_CLUSTER,
        idle_timeout=f"{idle_timeout_seconds}s",
        access_log=[_stdout_access_log(direction, ACCESS_LOG_FIELDS)],
    )


def _preserve_case() -> Json:
    """HTTP/1 header names as the peer wrote them (Envoy lowercases them otherwise), and the
    response's reason phrase as the server wrote it."""
    return {
        "header_key_format": {
            "stateful_formatter": {
                "name": "preserve_case",
                "typed_config": _typed(
                    "envoy.extensions.http.header_formatters.preserve_case.v3."
                    "PreserveCaseFormatterConfig",
                    forward_reason_phrase=True,
                ),
            }
        }
    }


def _http_chain(direction: str, idle_timeout_seconds: int) -> Json:
    """The filter chain of the connections detected as HTTP: each request goes to the original
    destination, is counted by response code (`stat_prefix` the direction) and logged as it
    completes. Every setting that changes traffic is at the value that changes it least; the
    idle timeout applies to the connection and to each request (a WebSocket included)."""
    idle = f"{idle_timeout_seconds}s"
    action = {"cluster": _http_cluster_name(direction), "timeout": "0s"}  # default: 15 s
    # CONNECT is proxied to the server (an HTTP proxy the application calls), not terminated.
    routes = [
        {"match": {"prefix": ""}, "route": action},
        {"match": {"connect_matcher": {}}, "route": action},
    ]
    manager = _typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix=direction,
        route_config={"virtual_hosts": [{"name": direction, "domains": ["*"], "routes": routes}]},
        http_filters=[
            {
                "name": "envoy.filters.http.router",
                "typed_config": _typed(
                    "envoy.extensions.filters.http.router.v3.Router", suppress_envoy_headers=True
                ),
            }
        ],
        access_log=[_stdout_access_log(direction, {**ACCESS_LOG_FIELDS, **HTTP_LOG_FIELDS})],
        http_protocol_options={
            **_preserve_case(),
            "accept_http_10": True,  # a later request of a connection detected as HTTP/1.1
            "allow_custom_methods": True,  # any method, not only Envoy's list (PURGE, get)
            "ignore_http_11_upgrade": [{"safe_regex": {"regex": NOT_WEBSOCKET}}],
        },
        common_http_protocol_options={
            "idle_timeout": idle,
            "max_headers_count": UNLIMITED,  # Envoy's default is 100
        },
        max_request_headers_kb=MAX_HEADERS_KB,
        stream_idle_timeout=idle,  # Envoy's default is 5 minutes
        # The response's Server header, the request's x-request-id (none is added),
        # `Expect: 100-continue` and x-forwarded-client-cert reach the other side as they are.
        server_header_transformation="PASS_THROUGH",
        generate_request_id=False,
        proxy_100_continue=True,
        forward_client_cert_details="ALWAYS_FORWARD_ONLY",
        upgrade_configs=[{"upgrade_type": "websocket"}, {"upgrade_type": "CONNECT"}],
    )
    return {
        "filter_chain_match": {"application_protocols": HTTP_PROTOCOLS},
        "filters": [
            {"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}
        ],
    }


def _http_cluster_name(direction: str) -> str:
    return f"{direction}_http"


def _http_cluster(direction: str, connect_timeout_seconds: int, idle_timeout_seconds: int) -> Json:
    """An ORIGINAL_DST cluster for a direction's HTTP requests, named `<direction>_http`.

    Each request goes to the original destination of its downstream connection (the address
    `original_dst` restored; the `x-envoy-original-dst-host` header is ignored, as
    `use_http_header` is off), over an upstream connection of that downstream connection alone
    (`connection_pool_per_downstream_connection`: requests of different clients never share
    one), in the protocol the client spoke.
    """
    options = _typed(
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        common_http_protocol_options={
            "idle_timeout": f"{idle_timeout_seconds}s",
            "max_headers_count": UNLIMITED,
            "max_response_headers_kb": MAX_HEADERS_KB,
        },
        use_downstream_protocol_config={
            "http_protocol_options": _preserve_case(),
            "http2_protocol_options": {},
        },
    )
    return _original_dst_cluster(
        _http_cluster_name(direction),
        connect_timeout_seconds,
        ("max_connections", "max_pending_requests", "max_requests"),
        connection_pool_per_downstream_connection=True,
        typed_extension_protocol_options={
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": options
        },
    )


def _original_dst_cluster(
    name: str, connect_timeout_seconds: int, unlimited: tuple[str, ...], **fields: Any
) -> Json:
    """A cluster whose endpoint is each connection's original destination (as `original_dst`
    restored it), with the circuit breaker thresholds named in `unlimited` at their maximum
    (Envoy's default is 1,024 each) and any other cluster `fields`."""
    return {
        "name": name,
        "type": "ORIGINAL_DST",
        "lb_policy": "CLUSTER_PROVIDED",
        "connect_timeout": f"{connect_timeout_seconds}s",
        "circuit_breakers": {"thresholds": [dict.fromkeys(unlimited, UNLIMITED)]},
        **fields,
    }


def _capture_listener(name: str, port: int, p: BootstrapParameters) -> Json:
    listener_filters = [
        {
            "name": "envoy.filters.listener.original_dst",
            "typed_config": _typed("envoy.extensions.filters.listener.original_dst.v3.OriginalDst"),
        }
    ]
    filter_chains = [
        {
            # Not redirected: the destination is this listener itself.
            "filter_chain_match": {"destination_port": port},
            "filters": [_tcp_proxy(f"{name}_loop", BLACKHOLE_CLUSTER)],
        },
        {"filters": [_pass_through(name, p.idle_timeout_seconds)]},
    ]
    listener: Json = {"name": name, **_listen((port,), p.ip_families)}
    if p.http_detection:
        listener_filters.append(
            {
                "name": "envoy.filters.listener.http_inspector",
                "typed_config": _typed(
                    "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"
                ),
            }
        )
        # A client that has sent nothing by then (a server that speaks first) is passed through.
        listener["listener_filters_timeout"] = f"{HTTP_DETECTION_TIMEOUT_SECONDS}s"
        listener["continue_on_listener_filters_timeout"] = True
        filter_chains.insert(1, _http_chain(name, p.idle_timeout_seconds))
    return {**listener, "listener_filters": listener_filters, "filter_chains": filter_chains}


def _admin_listener(p: BootstrapParameters) -> Json:
    """One HTTP listener on the health and the metrics port, exposing two admin paths to GET
    only: the health path answered by the admin `/ready`, and `/stats/prometheus`."""
    only_get = [{"name": ":method", "string_match": {"exact": "GET"}}]
    routes = [
        {
            "match": {"path": p.health_path, "headers": only_get},
            # With a path match, prefix_rewrite replaces the whole path.
            "route": {"cluster": ADMIN_CLUSTER, "prefix_rewrite": READY_PATH},
        },
        {
            "match": {"path": PROMETHEUS_PATH, "headers": only_get},
            "route": {"cluster": ADMIN_CLUSTER},
        },
    ]
    manager = _typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix=ADMIN_LISTENER,
        route_config={
            "virtual_hosts": [{"name": ADMIN_LISTENER, "domains": ["*"], "routes": routes}]
        },
        http_filters=[
            {
                "name": "envoy.filters.http.router",
                "typed_config": _typed("envoy.extensions.filters.http.router.v3.Router"),
            }
        ],
    )
    return {
        "name": ADMIN_LISTENER,
        **_listen((p.health_port, p.metrics_port), p.ip_families),
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }


def _admin_cluster(admin_port: int) -> Json:
    return {
        "name": ADMIN_CLUSTER,
        "type": "STATIC",
        "load_assignment": {
            "cluster_name": ADMIN_CLUSTER,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": _address("127.0.0.1", admin_port)}}]}
            ],
        },
    }


def bootstrap(parameters: BootstrapParameters) -> Json:
    """The complete bootstrap for these parameters, as a JSON-serialisable mapping (without
    the node metadata of a control plane, which `command_line` adds)."""
    p = parameters
    admin = {"admin": {"address": _address("127.0.0.1", p.admin_port)}}
    if p.control_plane is not None:
        return {
            **admin,
            "static_resources": {
                "listeners": [_admin_listener(p)],
                "clusters": [_admin_cluster(p.admin_port)],
            },
            "dynamic_resources": xds.dynamic_resources(p.control_plane),
        }
    return {
        **admin,
        "static_resources": {
            "listeners": [
                _capture_listener(OUTBOUND, p.outbound_port, p),
                _capture_listener(INBOUND, p.inbound_port, p),
                _admin_listener(p),
            ],
            "clusters": [
                _original_dst_cluster(
                    PASSTHROUGH_CLUSTER,
                    p.connect_timeout_seconds,
                    ("max_connections", "max_pending_requests"),
                ),
                {"name": BLACKHOLE_CLUSTER, "type": "STATIC"},
                _admin_cluster(p.admin_port),
                *(
                    _http_cluster(direction, p.connect_timeout_seconds, p.idle_timeout_seconds)
                    for direction in ((OUTBOUND, INBOUND) if p.http_detection else ())
                ),
            ],
        },
    }


def escape_expansion(text: str) -> str:
    """Text that Kubernetes' `$(VAR)` expansion of command and args turns back into itself.

    The kubelet reduces `$$` to `$` and replaces `$(NAME)` with a defined variable's value
    (Kubernetes API, `Container.args`), so every `$` is doubled.
    """
    return text.replace("$", "$$")


def command_line(
    parameters: BootstrapParameters, log_level: str, concurrency: int
) -> tuple[list[str], list[str]]:
    """The proxy container's `command` and `args`, for Envoy's log level (trace, debug, info,
    warning, error, critical or off) and number of worker threads.

    `command` is the binary itself, so neither image's entrypoint is involved. Hot restart is
    disabled: it needs shared memory and a domain socket that a container restart discards.
    The access log reaches stdout within a second (Envoy's default flush interval is 10 s).
    """
    config = escape_expansion(json.dumps(bootstrap(parameters), separators=(",", ":")))
    if parameters.control_plane is not None:
        # The node metadata's `$(VAR)` references are for the kubelet to expand, and nothing
        # else in it holds a `$`: its keys are fixed names and label keys, its other values
        # IP family names and port numbers.
        metadata = xds.node_metadata(
            parameters.control_plane,
            parameters.ip_families,
            parameters.outbound_port,
            parameters.inbound_port,
        )
        node = {"metadata": metadata}
        config = '{"node":' + json.dumps(node, separators=(",", ":")) + "," + config[1:]
    args = [
        "--config-yaml",
        config,
        "--service-node",
        NODE_ID,
        "--service-cluster",
        NODE_CLUSTER,
        "--log-level",
        log_level,
        "--concurrency",
        str(concurrency),
        "--file-flush-interval-msec",
        "1000",
        "--disable-hot-restart",
    ]
    return [ENVOY_BINARY], args
