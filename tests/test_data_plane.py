"""An injected Pod works: the embedded default, run in the Pod sandbox with the real rules and
the real Envoy, in native and in classic mode.

The application (tests/traffic_app.py, its own uid) runs in the Pod and again in the node's
namespace, which stands for everything outside the Pod. The Pod and the node are dual-stack:
the traffic tests run over IPv4 and over IPv6 in the same Pod. An IPv4-only Pod, IPv6 turned
off in its namespace, starts and carries its IPv4 traffic.
"""

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from data_plane import (
    access_log,
    address,
    app_pod,
    fetch,
    images,
    inject,
    start_node_app,
    wait_for_access_log,
)
from pod_sandbox import PodFailed, PodSandbox, python_program_image, unavailable_reason
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.root

PROXY = "mesh-proxy"
FAMILIES = ("IPv4", "IPv6")
EXCLUDED_OUTBOUND_PORT = 2525
# Per family: an excluded network, and an address of the node's in it.
EXCLUDED = {"IPv4": ("10.96.0.0/16", "10.96.0.10"), "IPv6": ("fd00:96::/64", "fd00:96::10")}
EXCLUDED_INBOUND_PORT = 8090
ANNOTATIONS = {
    "injector.dev/exclude-outbound-ports": str(EXCLUDED_OUTBOUND_PORT),
    "injector.dev/exclude-outbound-cidrs": ",".join(network for network, _ in EXCLUDED.values()),
    "injector.dev/exclude-inbound-ports": str(EXCLUDED_INBOUND_PORT),
}
MODES = {"native": {}, "classic": {"injector.dev/native-sidecar": "false"}}


@pytest.fixture(scope="session")
def usable() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@dataclass(frozen=True)
class RunningPod:
    sandbox: PodSandbox
    mode: str

    @property
    def pod_ip(self) -> str:
        return self.sandbox.pod_ip

    @property
    def node_ip(self) -> str:
        return self.sandbox.net.node_ip

    def pod_address(self, family: str) -> str:
        net = self.sandbox.net
        return net.pod_ip if family == "IPv4" else str(net.pod_ipv6)

    def node_address(self, family: str) -> str:
        net = self.sandbox.net
        return net.node_ip if family == "IPv4" else str(net.node_ipv6)


def run_pod(mode: str) -> Iterator[RunningPod]:
    pod = inject(app_pod({**ANNOTATIONS, **MODES[mode]}))
    with PodSandbox(pod, images()) as sandbox:
        for family, (_, excluded_address) in EXCLUDED.items():
            sandbox.net.add_node_address(f"{excluded_address}/{32 if family == 'IPv4' else 128}")
        start_node_app(sandbox)
        sandbox.start()
        sandbox.wait_ready(PROXY)
        sandbox.wait_ready("app")
        yield RunningPod(sandbox, mode)


@pytest.fixture(scope="module", params=sorted(MODES))
def pod(request: pytest.FixtureRequest, usable: None) -> Iterator[RunningPod]:
    yield from run_pod(request.param)


@pytest.fixture(params=sorted(MODES))
def own_pod(request: pytest.FixtureRequest, usable: None) -> Iterator[RunningPod]:
    """A Pod for one test alone: it stops the proxy."""
    yield from run_pod(request.param)


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return request.param


def test_the_proxy_is_where_the_mode_puts_it(pod: RunningPod) -> None:
    spec = pod.sandbox.pod["spec"]
    init = [c["name"] for c in spec["initContainers"]]
    containers = [c["name"] for c in spec["containers"]]
    if pod.mode == "native":
        assert (init, containers) == (["mesh-init", "mesh-init-ipv6", PROXY], ["app"])
    else:
        assert (init, containers) == (["mesh-init", "mesh-init-ipv6"], ["app", PROXY])


def test_the_proxy_passes_its_probes(pod: RunningPod) -> None:
    kinds = ("startup", "readiness") if pod.mode == "native" else ("readiness",)
    for kind in kinds:
        records = pod.sandbox.probe_records(PROXY, kind)
        assert records[-1].success if kind == "startup" else any(r.success for r in records)
        first = next(i for i, record in enumerate(records) if record.success)
        assert all(record.detail != "200" for record in records[:first])


def test_the_health_port_answers_from_envoy_readiness(pod: RunningPod, family: str) -> None:
    """The health port is Envoy's own /ready: failing Envoy's health makes it 503."""
    admin = pod.sandbox.sockets_of(PROXY)  # the admin interface is on the Pod's loopback
    pod_address = pod.pod_address(family)

    def health() -> int:
        return fetch(pod.sandbox.node_sockets, pod_address, 15021, "/healthz/ready").status

    assert health() == 200
    assert post(admin, "/healthcheck/fail") == 200
    try:
        assert health() == 503
    finally:
        assert post(admin, "/healthcheck/ok") == 200
    assert health() == 200
    assert fetch(pod.sandbox.node_sockets, pod_address, 15021, "/ready").status == 404


def post(sockets, path: str) -> int:
    with sockets.connect(("127.0.0.1", 15000)) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n".encode())
        return int(sock.recv(100).split(b" ")[1])


def test_the_node_names_the_pod_and_its_namespace(pod: RunningPod) -> None:
    """The kubelet expanded $(POD_NAME) and $(POD_NAMESPACE) from the Downward API."""
    info = fetch(pod.sandbox.sockets_of(PROXY), "127.0.0.1", 15000, "/server_info").json()
    assert (info["node"]["id"], info["node"]["cluster"]) == ("traffic.shop", "shop")
    assert info["state"] == "LIVE"


def test_the_admin_interface_is_not_reachable_from_outside(pod: RunningPod, family: str) -> None:
    with pod.sandbox.node_sockets.connect((pod.pod_address(family), 15000)) as sock:
        # Captured like any inbound connection; Envoy's admin is on loopback only.
        sock.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
        assert receive_or_reset(sock) == b""


def receive_or_reset(sock: socket.socket) -> bytes:
    try:
        return sock.recv(100)
    except ConnectionResetError:
        return b""


def test_the_node_reaches_the_application_through_the_proxy(pod: RunningPod, family: str) -> None:
    pod_address = pod.pod_address(family)
    before = downstream_connections(pod.sandbox, "inbound")
    fetched = fetch(pod.sandbox.node_sockets, pod_address, 8080, "/from-the-node")
    assert fetched.status == 200
    # Envoy connected on to the application, in the same family, from the Pod's own address.
    assert fetched.json()["peer"] == pod_address
    entry = wait_for_access_log(
        pod.sandbox, lambda e: e["downstream_remote_address"] == address(*fetched.client)
    )
    assert entry["direction"] == "inbound"
    assert entry["downstream_local_address"] == address(pod_address, 8080)
    assert entry["bytes_received"] > 0 and entry["bytes_sent"] > len(fetched.body)
    assert entry["response_flags"] == "-"
    assert isinstance(entry["duration"], int)
    assert downstream_connections(pod.sandbox, "inbound") > before


def test_the_application_reaches_the_node_through_the_proxy(pod: RunningPod, family: str) -> None:
    node_address = pod.node_address(family)
    before = downstream_connections(pod.sandbox, "outbound")
    fetched = fetch(pod.sandbox.sockets_of("app"), node_address, 8080, "/from-the-app")
    assert fetched.status == 200
    # Envoy connected on to the original destination in the same family.
    assert fetched.json()["peer"] == pod.pod_address(family)
    entry = wait_for_access_log(
        pod.sandbox, lambda e: e["downstream_remote_address"] == address(*fetched.client)
    )
    assert entry["direction"] == "outbound"
    assert entry["downstream_local_address"] == address(node_address, 8080)
    assert downstream_connections(pod.sandbox, "outbound") > before


def test_the_metrics_port_serves_prometheus_text(pod: RunningPod, family: str) -> None:
    pod_address = pod.pod_address(family)
    fetched = fetch(pod.sandbox.node_sockets, pod_address, 15090, "/stats/prometheus")
    assert fetched.status == 200
    families = {f.name: f for f in text_string_to_metric_families(fetched.body.decode())}
    assert families["envoy_server_live"].samples[0].value == 1
    assert families["envoy_tcp_downstream_cx"].type == "counter"
    assert fetch(pod.sandbox.node_sockets, pod_address, 15090, "/quitquitquit").status == 404


def downstream_connections(sandbox: PodSandbox, direction: str) -> int:
    """Envoy's count of connections its capture listener for a direction has taken."""
    fetched = fetch(sandbox.node_sockets, sandbox.pod_ip, 15090, "/stats/prometheus")
    for family in text_string_to_metric_families(fetched.body.decode()):
        for sample in family.samples:
            if (
                sample.name == "envoy_tcp_downstream_cx_total"
                and sample.labels.get("envoy_tcp_prefix") == direction
            ):
                return int(sample.value)
    return 0


def test_with_the_proxy_stopped_only_the_exclusions_work(own_pod: RunningPod) -> None:
    """For both families in the same Pod: an excluded port and network outbound, an excluded
    port inbound."""
    sandbox = own_pod.sandbox
    app = sandbox.sockets_of("app")

    def banner(sockets, host: str, port: int) -> bytes:
        with sockets.connect((host, port)) as sock:
            return sock.recv(100)

    def excluded_traffic_works(family: str) -> None:
        pod_address, node_address = own_pod.pod_address(family), own_pod.node_address(family)
        assert banner(app, node_address, EXCLUDED_OUTBOUND_PORT).startswith(b"220 ")
        assert fetch(app, EXCLUDED[family][1], 8080).status == 200
        assert banner(sandbox.node_sockets, pod_address, EXCLUDED_INBOUND_PORT) == b"bound-address"

    for family in FAMILIES:
        excluded_traffic_works(family)
        assert fetch(app, own_pod.node_address(family), 8080).status == 200
        last = fetch(sandbox.node_sockets, own_pod.pod_address(family), 8080)
        assert last.status == 200
        # The proxy logs connections in the order they close: by this one, the excluded ones.
        wait_for_access_log(
            sandbox, lambda e, last=last: e["downstream_remote_address"] == address(*last.client)
        )
    logged = {entry["downstream_local_address"] for entry in access_log(sandbox)}
    for family in FAMILIES:
        assert address(own_pod.node_address(family), EXCLUDED_OUTBOUND_PORT) not in logged
        assert address(EXCLUDED[family][1], 8080) not in logged
        assert address(own_pod.pod_address(family), EXCLUDED_INBOUND_PORT) not in logged

    sandbox.stop_container(PROXY)

    for family in FAMILIES:
        with pytest.raises(ConnectionRefusedError):
            fetch(app, own_pod.node_address(family), 8080)
        with pytest.raises(ConnectionRefusedError):
            fetch(sandbox.node_sockets, own_pod.pod_address(family), 8080)
        excluded_traffic_works(family)


@pytest.mark.parametrize("hold", ["true", "false"])
def test_the_pods_own_init_container_connects_out_through_the_proxy(
    usable: None, hold: str
) -> None:
    """Native mode: the proxy's startupProbe holds the Pod's own init containers until the
    proxy listens, with or without holding the application."""
    connect_out = {
        "name": "connect-out",
        "image": "registry.example/connect-out:1",
        "args": ["$(NODE_IP)"],
        "env": [{"name": "NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}],
        "securityContext": {"runAsUser": 2000, "runAsGroup": 2000},
    }
    pod = app_pod(
        {"injector.dev/hold-application-until-proxy-ready": hold}, initContainers=[connect_out]
    )
    injected = inject(pod)
    init = injected["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["mesh-init", "mesh-init-ipv6", PROXY, "connect-out"]
    assert "startupProbe" in init[2]
    more = {"registry.example/connect-out:1": python_program_image(CONNECT_OUT)}
    with PodSandbox(injected, images(**more)) as sandbox:
        start_node_app(sandbox)
        sandbox.start()  # fails if the init container does
        entry = wait_for_access_log(
            sandbox, lambda e: e["downstream_local_address"] == address(sandbox.net.node_ip, 2525)
        )
        assert entry["direction"] == "outbound"
        assert sandbox.running("app")


# Connects to the node's banner server as the Pod starts; fails unless the banner arrives.
CONNECT_OUT = r"""
import socket, sys

with socket.create_connection((sys.argv[1], 2525), timeout=10) as sock:
    banner = sock.recv(100)
sys.exit(0 if banner.startswith(b"220 ") else f"no banner: {banner!r}")
"""


def test_a_pod_whose_proxy_cannot_start_fails_loudly(usable: None) -> None:
    """The sandbox does not pretend: an Envoy that exits fails the Pod's start."""
    injected = inject(app_pod())
    proxy = next(c for c in injected["spec"]["initContainers"] if c["name"] == PROXY)
    proxy["args"] = ["--config-yaml", "{not a bootstrap"]
    with PodSandbox(injected, images()) as sandbox, pytest.raises(PodFailed, match=PROXY):
        sandbox.start()


def test_an_ipv4_only_pod_starts_and_carries_its_ipv4_traffic(usable: None) -> None:
    """IPv6 turned off in the Pod's namespace: the IPv6 rules still load (they match nothing),
    Envoy still listens on ::, and IPv4 goes through the proxy both ways."""
    injected = inject(app_pod())
    with PodSandbox(injected, images(), ipv6=False) as sandbox:
        start_node_app(sandbox)
        sandbox.start()  # fails if an init container does
        sandbox.wait_ready(PROXY)
        sandbox.wait_ready("app")
        assert sandbox.pod["status"]["podIPs"] == [{"ip": sandbox.pod_ip}]
        assert sandbox.exec("app", ["cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6"]) == "1\n"
        node_ip = sandbox.net.node_ip

        inbound = fetch(sandbox.node_sockets, sandbox.pod_ip, 8080, "/from-the-node")
        outbound = fetch(sandbox.sockets_of("app"), node_ip, 8080, "/from-the-app")

        assert (inbound.status, inbound.json()["peer"]) == (200, sandbox.pod_ip)
        assert (outbound.status, outbound.json()["peer"]) == (200, sandbox.pod_ip)
        for fetched, direction in ((inbound, "inbound"), (outbound, "outbound")):
            entry = wait_for_access_log(
                sandbox, lambda e, f=fetched: e["downstream_remote_address"] == address(*f.client)
            )
            assert entry["direction"] == direction
