"""An injected Pod whose proxy joins an xDS control plane, run in the Pod sandbox.

The Pod sandbox runs the patched Pod as the kubelet would (the real rules, the real Envoy, the
projected ServiceAccount token written as the kubelet writes it, issued by a stand-in for the
API server); the test control plane (tests/xds_control_plane.py) runs in the node's namespace
on an address of its own (like a Service's), serving TLS with a test CA and accepting only
tokens issued for the configured audience. What it serves is built, as a mesh's control plane
builds it, from what the proxy announced in its node metadata (`INTERCEPTION`: the families
and ports the Pod's rules capture): it maps a virtual address of each family that nothing
listens on to servers in the node's namespace, so only the pushed configuration makes it
reachable. The Pod is dual-stack, its IPv4 and IPv6 traffic both captured unless its
annotation says otherwise. The namespaces belong to one test alone, so the control plane's
port is fixed.
"""

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from control_plane import (
    CLUSTER,
    LISTENER,
    ControlPlane,
    mesh_configuration,
    run_control_plane,
    start_name_server,
)
from data_plane import app_pod, fetch, images, inject
from pod_sandbox import PodFailed, PodSandbox, unavailable_reason
from service_account_tokens import TokenIssuer

from injector.cluster.dev_certs import create_dev_certificates
from injector.core.config import InjectorConfig, parse_config
from injector.core.keys import PROXY_CONTAINER, PROXY_TOKEN_VOLUME

pytestmark = pytest.mark.root

AUDIENCE = "mesh-control-plane"
SERVER_NAME = "control-plane.mesh-system.svc"
SERVICE_ACCOUNT = "checkout"
CONTROL_PLANE_IP = "10.96.0.12"
CONTROL_PLANE_PORT = 15012
VIRTUAL_IP = "10.96.0.10"
VIRTUAL_IPV6 = "fd00:10:96::10"
VIRTUAL_PORT = 80
APP_PORT = 8080  # the traffic application's HTTP port, in the Pod
TIMEOUT = 60.0

Json = dict[str, Any]


@pytest.fixture(scope="module", autouse=True)
def usable() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server: tuple[Path, Path]
    other_ca_server: tuple[Path, Path]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    trusted, other = tmp_path_factory.mktemp("trusted-ca"), tmp_path_factory.mktemp("other-ca")
    create_dev_certificates(trusted, [SERVER_NAME])
    create_dev_certificates(other, [SERVER_NAME])
    return Certificates(
        trusted / "ca.crt",
        (trusted / "tls.crt", trusted / "tls.key"),
        (other / "tls.crt", other / "tls.key"),
    )


@dataclass
class MeshPod:
    sandbox: PodSandbox
    control_plane: ControlPlane
    config: InjectorConfig
    backends: dict[str, int]  # name -> port, servers in the node's namespace

    def interception(self) -> Json:
        """What the proxy said its Pod's rules capture: its node metadata's `INTERCEPTION`,
        from its first stream."""
        return self.control_plane.wait_for_stream()["node"]["metadata"]["INTERCEPTION"]

    def configure(
        self,
        backend: str,
        interception: Json | None = None,
        ip_families: Sequence[str] | None = None,
    ) -> str:
        """Serves the mesh configuration routing the virtual addresses to a backend, with
        capture listeners for what the proxy announced (or for `interception`), and for
        `ip_families` alone when given: a control plane serving less than was announced."""
        interception = dict(interception or self.interception())
        if ip_families is not None:
            interception["IP_FAMILIES"] = list(ip_families)
        return self.control_plane.set(
            **mesh_configuration(
                interception,
                virtual_ips=(VIRTUAL_IP, VIRTUAL_IPV6),
                virtual_port=VIRTUAL_PORT,
                backend=(self.sandbox.net.node_ip, self.backends[backend]),
            )
        )

    def call(self, host: str, port: int = VIRTUAL_PORT) -> str:
        """What the application gets from a new connection to an address (IPv4 or IPv6)."""
        with self.sandbox.sockets_of("app").connect((host, port), TIMEOUT) as sock:
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def call_virtual_address(self) -> str:
        return self.call(VIRTUAL_IP)

    def admin_get(self, path: str) -> Any:
        """A JSON answer of Envoy's admin interface, which is on the Pod's loopback."""
        admin = self.sandbox.sockets_of(PROXY_CONTAINER)
        fetched = fetch(admin, "127.0.0.1", self.config.proxy.ports.admin, path)
        assert fetched.status == 200, fetched
        return fetched.json()

    def counter(self, name: str) -> int:
        """An Envoy counter's value (0 before it exists)."""
        stats = self.admin_get(f"/stats?filter=^{name}$&format=json")["stats"]
        return next((item["value"] for item in stats if "value" in item), 0)

    def listening(self) -> set[str]:
        """The addresses of Envoy's capture listeners, as its admin interface lists them:
        `outbound 0.0.0.0:15001`, `inbound [::]:15006`."""
        statuses = self.admin_get("/listeners?format=json")
        found = set()
        for status in statuses["listener_statuses"]:
            local = [status["local_address"], *status.get("additional_local_addresses", ())]
            for address in local:
                socket_address = address["socket_address"]
                found.add(
                    f"{status['name']} "
                    + _host_port(socket_address["address"], socket_address["port_value"])
                )
        return {item for item in found if item.split()[0] in ("outbound", "inbound")}


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _config(certificates: Certificates, host: str, port: int, **tls: Any) -> InjectorConfig:
    return parse_config(
        json.dumps(
            {
                "controlPlane": {
                    "address": {"host": host, "port": port},
                    "tls": {
                        "mode": "verify",
                        "caCertificate": certificates.ca.read_text(),
                        "serverName": SERVER_NAME,
                        **tls,
                    },
                    "token": {"audience": AUDIENCE, "expirationSeconds": 3600},
                    "podLabels": ["app", "version", "tier"],
                }
            }
        )
    )


@contextmanager
def mesh_pod(
    tmp_path: Path,
    certificates: Certificates,
    serving: tuple[Path, Path] | None = None,
    annotations: dict[str, str] | None = None,
    start: bool = True,
    served_families: Sequence[str] | None = None,
) -> Iterator[MeshPod]:
    """The injected Pod, its control plane and two backends; started once configured (with
    capture listeners for `served_families` alone, when given)."""
    issuer = TokenIssuer()
    (tmp_path / "issuer.pub").write_text(issuer.public_key_pem)
    config = _config(certificates, CONTROL_PLANE_IP, CONTROL_PLANE_PORT)
    pod = app_pod(annotations, serviceAccountName=SERVICE_ACCOUNT)
    pod["metadata"]["labels"] = {"app": "checkout", "version": "v2"}
    with PodSandbox(inject(pod, config), images(config), token_issuer=issuer) as sandbox:
        sandbox.net.add_node_address(f"{CONTROL_PLANE_IP}/32")
        with run_control_plane(
            host=CONTROL_PLANE_IP,
            port=CONTROL_PLANE_PORT,
            tls=serving or certificates.server,
            issuer_key=tmp_path / "issuer.pub",
            audience=AUDIENCE,
            wrap=sandbox.net.in_node,
            stderr=tmp_path / "control-plane.stderr",
        ) as control_plane:
            backends = {
                name: start_name_server(sandbox.run_on_node, sandbox.net.node_ip, name)
                for name in ("backend-a", "backend-b")
            }
            mesh = MeshPod(sandbox, control_plane, config, backends)
            if start:
                # As a mesh does: the configuration follows what the proxy announces.
                with ThreadPoolExecutor(max_workers=1) as pool:
                    starting = pool.submit(sandbox.start)
                    mesh.configure("backend-a", ip_families=served_families)
                    starting.result(timeout=TIMEOUT)
                sandbox.wait_ready(PROXY_CONTAINER)
            yield mesh


def test_the_proxy_joins_with_its_token_and_the_pod_s_identity_and_takes_the_mesh_s_routes(
    tmp_path: Path, certificates: Certificates
) -> None:
    with mesh_pod(tmp_path, certificates) as mesh:
        assert mesh.call_virtual_address() == "backend-a"
        stream = mesh.control_plane.streams()[0]
        pod_ip = mesh.sandbox.pod_ip
    assert stream["accepted"] is True
    assert stream["subject"] == f"system:serviceaccount:shop:{SERVICE_ACCOUNT}"
    assert stream["audience"] == [AUDIENCE]
    node = stream["node"]
    assert (node["id"], node["cluster"]) == ("traffic.shop", "shop")
    assert node["metadata"] == {
        "NAME": "traffic",
        "NAMESPACE": "shop",
        "SERVICE_ACCOUNT": SERVICE_ACCOUNT,
        "POD_IP": pod_ip,
        "NODE_NAME": "sandbox-node",
        "LABELS": {"app": "checkout", "version": "v2", "tier": ""},
        "INTERCEPTION": {
            "IP_FAMILIES": ["IPv4", "IPv6"],
            "OUTBOUND_PORT": 15001,
            "INBOUND_PORT": 15006,
        },
    }


def test_without_the_control_plane_the_virtual_address_leads_nowhere(
    tmp_path: Path, certificates: Certificates
) -> None:
    annotations = {"injector.dev/control-plane": "false"}
    with mesh_pod(tmp_path, certificates, annotations=annotations, start=False) as mesh:
        assert PROXY_TOKEN_VOLUME not in json.dumps(mesh.sandbox.pod)
        mesh.sandbox.start()
        mesh.sandbox.wait_ready(PROXY_CONTAINER)
        # The pass-through connects to the original destination, which nothing answers.
        assert mesh.call_virtual_address() == ""
        assert mesh.control_plane.streams() == []


def test_the_health_port_answers_only_once_the_first_configuration_arrived(
    tmp_path: Path, certificates: Certificates
) -> None:
    with mesh_pod(tmp_path, certificates, start=False) as mesh:
        starting = threading.Thread(target=mesh.sandbox.start, daemon=True)
        starting.start()
        mesh.control_plane.wait_for_stream()
        # Connected, nothing served: the startup probe fails, and the application is held.
        _wait(lambda: _failures(mesh.sandbox, "startup") >= 3, "three failed startup probes")
        assert not mesh.sandbox.containers["app"].process
        configured_at = time.monotonic()
        version = mesh.configure("backend-a")
        mesh.control_plane.wait_for_ack(LISTENER, version)
        starting.join(timeout=TIMEOUT)
        assert not starting.is_alive()
        mesh.sandbox.wait_ready(PROXY_CONTAINER)
        records = mesh.sandbox.probe_records(PROXY_CONTAINER, "startup")
        assert all(not record.success for record in records if record.at < configured_at)
        assert records[-1].success
        assert mesh.call_virtual_address() == "backend-a"


def test_a_pushed_route_is_followed_by_new_connections(
    tmp_path: Path, certificates: Certificates
) -> None:
    with mesh_pod(tmp_path, certificates) as mesh:
        assert mesh.call_virtual_address() == "backend-a"
        version = mesh.configure("backend-b")
        mesh.control_plane.wait_for_ack(CLUSTER, version)
        mesh.control_plane.wait_for_ack(LISTENER, version)
        _wait(lambda: mesh.call_virtual_address() == "backend-b", "the new route")
        assert len(mesh.control_plane.streams()) == 1


def test_a_dual_stack_pod_s_ipv6_goes_through_the_listeners_its_proxy_announced(
    tmp_path: Path, certificates: Certificates
) -> None:
    """Both families captured, announced and served: the application's IPv6 connections follow
    the pushed route or reach their original destination, and the node's reach the application,
    all through the proxy."""
    with mesh_pod(tmp_path, certificates) as mesh:
        net = mesh.sandbox.net
        pod_ipv6, node_ipv6 = str(net.pod_ipv6), str(net.node_ipv6)
        assert mesh.interception()["IP_FAMILIES"] == ["IPv4", "IPv6"]
        assert mesh.listening() == {
            f"{name} {address}:{port}"
            for name, port in (("outbound", 15001), ("inbound", 15006))
            for address in ("0.0.0.0", "[::]")
        }

        assert mesh.call(VIRTUAL_IPV6) == "backend-a"
        port = start_name_server(mesh.sandbox.run_on_node, node_ipv6, "node-ipv6")
        before = mesh.counter("tcp.outbound.downstream_cx_total")
        assert mesh.call(node_ipv6, port) == "node-ipv6"
        assert mesh.counter("tcp.outbound.downstream_cx_total") == before + 1
        mesh.sandbox.wait_ready("app")
        inbound = fetch(mesh.sandbox.node_sockets, pod_ipv6, APP_PORT, "/from-the-node")
        # The proxy connected on to the application from the Pod's own address.
        assert (inbound.status, inbound.json()["peer"]) == (200, pod_ipv6)


def test_an_ipv4_only_pod_announces_ipv4_alone_and_gets_ipv4_listeners_only(
    tmp_path: Path, certificates: Certificates
) -> None:
    """IPv6 not captured (the Pod's annotation): the proxy announces IPv4 alone, gets capture
    listeners on 0.0.0.0 alone, and the Pod's IPv6 goes directly both ways."""
    annotations = {"injector.dev/ip-families": "IPv4"}
    with mesh_pod(tmp_path, certificates, annotations=annotations) as mesh:
        net = mesh.sandbox.net
        pod_ipv6, node_ipv6 = str(net.pod_ipv6), str(net.node_ipv6)
        init = [c["name"] for c in mesh.sandbox.pod["spec"]["initContainers"]]
        assert init == ["mesh-init", PROXY_CONTAINER]
        assert mesh.interception() == {
            "IP_FAMILIES": ["IPv4"],
            "OUTBOUND_PORT": 15001,
            "INBOUND_PORT": 15006,
        }
        assert mesh.listening() == {"outbound 0.0.0.0:15001", "inbound 0.0.0.0:15006"}
        assert mesh.call_virtual_address() == "backend-a"

        port = start_name_server(mesh.sandbox.run_on_node, node_ipv6, "node-ipv6")
        before = mesh.counter("tcp.outbound.downstream_cx_total")
        assert mesh.call(node_ipv6, port) == "node-ipv6"
        assert mesh.counter("tcp.outbound.downstream_cx_total") == before
        mesh.sandbox.wait_ready("app")
        inbound = fetch(mesh.sandbox.node_sockets, pod_ipv6, APP_PORT, "/from-the-node")
        # Straight from the node: the application sees the node's address.
        assert (inbound.status, inbound.json()["peer"]) == (200, node_ipv6)


def test_a_captured_family_the_control_plane_serves_no_listener_for_is_refused(
    tmp_path: Path, certificates: Certificates
) -> None:
    """A control plane serving IPv4 capture listeners alone to a Pod whose IPv6 is captured
    too: IPv4 works, and every IPv6 connection, either way, is refused."""
    with mesh_pod(tmp_path, certificates, served_families=["IPv4"]) as mesh:
        net = mesh.sandbox.net
        pod_ipv6, node_ipv6 = str(net.pod_ipv6), str(net.node_ipv6)
        assert mesh.interception()["IP_FAMILIES"] == ["IPv4", "IPv6"]
        assert mesh.listening() == {"outbound 0.0.0.0:15001", "inbound 0.0.0.0:15006"}
        assert mesh.call_virtual_address() == "backend-a"

        port = start_name_server(mesh.sandbox.run_on_node, node_ipv6, "node-ipv6")
        with pytest.raises(ConnectionRefusedError):
            mesh.call(node_ipv6, port)
        mesh.sandbox.wait_ready("app")  # it listens: what refuses is the missing listener
        with pytest.raises(ConnectionRefusedError):
            fetch(mesh.sandbox.node_sockets, pod_ipv6, APP_PORT, "/from-the-node")


def test_a_stopped_control_plane_leaves_the_pod_working_and_the_proxy_reconnects_with_a_fresh_token(
    tmp_path: Path, certificates: Certificates
) -> None:
    with mesh_pod(tmp_path, certificates) as mesh:
        first = mesh.control_plane.streams()[0]
        mesh.control_plane.stop()
        stopped_at = time.monotonic()
        assert mesh.call_virtual_address() == "backend-a"
        rotated = mesh.sandbox.rotate_tokens(PROXY_TOKEN_VOLUME)
        # Still ready: the probes keep passing while the control plane is away.
        _wait(lambda: _successes_since(mesh.sandbox, stopped_at) >= 3, "probes while stopped")
        assert not _failures_since(mesh.sandbox, stopped_at)
        mark = len(mesh.control_plane.events)
        mesh.control_plane.start()
        stream = mesh.control_plane.wait_for_stream(after=mark)
        mesh.control_plane.wait_for_ack(LISTENER, "1", after=mark)
        assert mesh.call_virtual_address() == "backend-a"
    assert stream["token_digest"] != first["token_digest"]
    assert stream["token_digest"] == _digest(rotated["token"])


def test_the_proxy_refuses_a_control_plane_its_ca_did_not_sign(
    tmp_path: Path, certificates: Certificates
) -> None:
    with mesh_pod(
        tmp_path, certificates, serving=certificates.other_ca_server, start=False
    ) as mesh:
        # What the proxy would announce, from its rendered bootstrap: no stream ever comes.
        mesh.configure("backend-a", interception=_rendered_interception(mesh.sandbox.pod))
        starting = threading.Thread(target=_start_quietly, args=(mesh.sandbox,), daemon=True)
        starting.start()
        _wait(lambda: _failures(mesh.sandbox, "startup") >= 3, "three failed startup probes")
        _wait(
            lambda: mesh.sandbox.stderr(PROXY_CONTAINER).count("config stream to") >= 2, "retries"
        )
        assert mesh.control_plane.streams() == []
        assert not mesh.sandbox.containers["app"].process
        # The kubelet would restart the proxy after 10 minutes of failed startup probes.
        mesh.sandbox.stop_container(PROXY_CONTAINER)
        starting.join(timeout=TIMEOUT)
        assert not starting.is_alive()


def _rendered_interception(pod: Json) -> Json:
    """The node metadata's `INTERCEPTION` in an injected Pod's proxy arguments (plain text:
    nothing in it is for the kubelet to expand)."""
    spec = pod["spec"]
    proxy = next(
        container
        for container in (*spec.get("initContainers", ()), *spec["containers"])
        if container["name"] == PROXY_CONTAINER
    )
    args = proxy["args"]
    return json.loads(args[args.index("--config-yaml") + 1])["node"]["metadata"]["INTERCEPTION"]


def _start_quietly(sandbox: PodSandbox) -> None:
    with contextlib.suppress(PodFailed):  # stopped while the proxy was still not ready
        sandbox.start()


def _failures(sandbox: PodSandbox, kind: str) -> int:
    proxy = sandbox.containers[PROXY_CONTAINER]
    if kind not in proxy.probers:
        return 0
    return sum(not record.success for record in sandbox.probe_records(PROXY_CONTAINER, kind))


def _successes_since(sandbox: PodSandbox, since: float) -> int:
    records = sandbox.probe_records(PROXY_CONTAINER, "readiness")
    return sum(record.success for record in records if record.at > since)


def _failures_since(sandbox: PodSandbox, since: float) -> list:
    records = sandbox.probe_records(PROXY_CONTAINER, "readiness")
    return [record for record in records if record.at > since and not record.success]


def _wait(condition, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]
