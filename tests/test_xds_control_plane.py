"""The test control plane against the real Envoy, with a hand-written ADS bootstrap.

These prove the control plane (tests/xds_control_plane.py) and the Envoy facts the injector's
control-plane mode rests on, on this machine's loopback: Envoy takes listeners and clusters
over one ADS stream (state of the world) and acknowledges them; a pushed version replaces
them; a rejected one is NACKed and the last good one kept; `initial_fetch_timeout: 0s` keeps
Envoy un-initialized (`/ready` 503) until the first configuration, however long that takes;
the `envoy.grpc_credentials.file_based_metadata` credentials of the `google_grpc` client read
the token file again for every stream, so a token the kubelet rotated is what the next stream
presents; and the control plane's certificate is verified against the configured CA and name.
"""

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from control_plane import (
    CLUSTER,
    LISTENER,
    ControlPlane,
    run_control_plane,
    static_cluster,
    tcp_listener,
)
from local_envoy import LocalEnvoy, name_server, read_name, run_envoy
from service_account_tokens import TokenIssuer, write_atomically

from injector.cluster.dev_certs import create_dev_certificates

AUDIENCE = "mesh-control-plane"
SERVER_NAME = "control-plane.mesh-system.svc"
FILE_BASED_METADATA = "envoy.grpc_credentials.file_based_metadata"
# Envoy's default initial_fetch_timeout, after which it would start without configuration.
ENVOY_DEFAULT_INITIAL_FETCH_TIMEOUT = 15.0


def ads_bootstrap(
    port: int,
    ca: Path | None = None,
    token: Path | None = None,
    server_name: str | None = None,
) -> dict[str, Any]:
    """Listeners and clusters from ADS only, over the google_grpc client."""
    google_grpc: dict[str, Any] = {"target_uri": f"127.0.0.1:{port}", "stat_prefix": "ads"}
    if ca is not None:
        google_grpc["channel_credentials"] = {
            "ssl_credentials": {"root_certs": {"filename": str(ca)}}
        }
    if server_name is not None:
        google_grpc["channel_args"] = {
            "args": {"grpc.ssl_target_name_override": {"string_value": server_name}}
        }
    if token is not None:
        google_grpc["credentials_factory_name"] = FILE_BASED_METADATA
        google_grpc["call_credentials"] = [
            {
                "from_plugin": {
                    "name": FILE_BASED_METADATA,
                    "typed_config": {
                        "@type": "type.googleapis.com/"
                        "envoy.config.grpc_credential.v3.FileBasedMetadataConfig",
                        "secret_data": {"filename": str(token)},
                        "header_prefix": "Bearer ",
                    },
                }
            }
        ]
    source = {"ads": {}, "resource_api_version": "V3", "initial_fetch_timeout": "0s"}
    return {
        "node": {"id": "web-7d9c6.shop", "cluster": "shop", "metadata": {"NAMESPACE": "shop"}},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"google_grpc": google_grpc}],
                "set_node_on_first_message_only": True,
            },
            "lds_config": source,
            "cds_config": source,
        },
    }


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server: tuple[Path, Path]  # certificate, key: for SERVER_NAME only
    other_ca_server: tuple[Path, Path]  # signed by another CA, for SERVER_NAME and 127.0.0.1


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    trusted, other = tmp_path_factory.mktemp("trusted-ca"), tmp_path_factory.mktemp("other-ca")
    create_dev_certificates(trusted, [SERVER_NAME])
    create_dev_certificates(other, [SERVER_NAME, "127.0.0.1"])
    return Certificates(
        ca=trusted / "ca.crt",
        server=(trusted / "tls.crt", trusted / "tls.key"),
        other_ca_server=(other / "tls.crt", other / "tls.key"),
    )


@dataclass
class Setup:
    control_plane: ControlPlane
    issuer: TokenIssuer
    token_dir: Path
    directory: Path

    def write_token(self, service_account: str = "web", audience: str = AUDIENCE) -> str:
        token = self.issuer.issue("shop", service_account, audience, 3600, pod_name="web-7d9c6")
        write_atomically(self.token_dir, {"token": token})
        return token

    def bootstrap(self, certificates: Certificates, **overrides: Any) -> dict[str, Any]:
        options: dict[str, Any] = {
            "ca": certificates.ca,
            "token": self.token_dir / "token",
            "server_name": SERVER_NAME,
            **overrides,
        }
        return ads_bootstrap(self.control_plane.port, **options)


@pytest.fixture
def setup(tmp_path: Path, certificates: Certificates) -> Iterator[Setup]:
    """A control plane serving TLS with the trusted CA's certificate and checking tokens."""
    issuer = TokenIssuer()
    (tmp_path / "issuer.pub").write_text(issuer.public_key_pem)
    token_dir = tmp_path / "token"
    token_dir.mkdir()
    with run_control_plane(
        tls=certificates.server,
        issuer_key=tmp_path / "issuer.pub",
        audience=AUDIENCE,
        stderr=tmp_path / "control-plane.stderr",
    ) as control_plane:
        yield Setup(control_plane, issuer, token_dir, tmp_path)


def serve_backend(control_plane: ControlPlane, backend_port: int) -> str:
    """A listener (Envoy picks its port) passing connections to a cluster of one backend."""
    return control_plane.set(
        listeners=[tcp_listener("edge", "127.0.0.1", 0, "backend")],
        clusters=[static_cluster("backend", "127.0.0.1", backend_port)],
    )


def configured(envoy: LocalEnvoy, control_plane: ControlPlane, version: str) -> None:
    control_plane.wait_for_ack(CLUSTER, version)
    control_plane.wait_for_ack(LISTENER, version)
    envoy.wait_until(lambda: envoy.ready() == (200, "LIVE"), "Envoy ready")


def test_envoy_takes_listeners_and_clusters_over_ads_presenting_its_token(
    setup: Setup, certificates: Certificates
) -> None:
    token = setup.write_token()
    with (
        name_server("backend-a") as port,
        run_envoy(setup.bootstrap(certificates), setup.directory) as envoy,
    ):
        stream = setup.control_plane.wait_for_stream()
        version = serve_backend(setup.control_plane, port)
        configured(envoy, setup.control_plane, version)
        assert read_name(envoy.listener_port("edge")) == "backend-a"
    assert stream["node"]["id"] == "web-7d9c6.shop"
    assert stream["node"]["metadata"] == {"NAMESPACE": "shop"}
    assert stream["subject"] == "system:serviceaccount:shop:web"
    assert stream["audience"] == [AUDIENCE]
    assert stream["token_digest"] == _digest(token)


def test_a_pushed_version_replaces_the_configuration_for_new_connections(
    setup: Setup, certificates: Certificates
) -> None:
    setup.write_token()
    with (
        name_server("backend-a") as port_a,
        name_server("backend-b") as port_b,
        run_envoy(setup.bootstrap(certificates), setup.directory) as envoy,
    ):
        configured(envoy, setup.control_plane, serve_backend(setup.control_plane, port_a))
        edge = envoy.listener_port("edge")
        assert read_name(edge) == "backend-a"
        version = serve_backend(setup.control_plane, port_b)
        assert version == "2"
        setup.control_plane.wait_for_ack(CLUSTER, version)
        envoy.wait_until(lambda: read_name(edge) == "backend-b", "connections to the new backend")
        # One stream carried both versions: the push needed no reconnection.
        assert len(setup.control_plane.streams()) == 1


def test_a_rejected_configuration_is_nacked_and_the_last_good_one_kept(
    setup: Setup, certificates: Certificates
) -> None:
    setup.write_token()
    with (
        name_server("backend-a") as port,
        run_envoy(setup.bootstrap(certificates), setup.directory) as envoy,
    ):
        configured(envoy, setup.control_plane, serve_backend(setup.control_plane, port))
        mark = len(setup.control_plane.events)
        broken = static_cluster("backend", "127.0.0.1", port)
        broken["lb_policy"] = "CLUSTER_PROVIDED"  # only for clusters that provide one
        setup.control_plane.set(
            listeners=[tcp_listener("edge", "127.0.0.1", 0, "backend")], clusters=[broken]
        )
        nack = setup.control_plane.wait_for_nack(CLUSTER, after=mark)
        assert nack["version_info"] == "1"  # still the last version it accepted
        assert "cluster provided LB specified" in nack["error"]
        assert read_name(envoy.listener_port("edge")) == "backend-a"
        assert envoy.ready() == (200, "LIVE")


def test_readiness_waits_for_the_first_configuration_while_the_control_plane_is_down_or_silent(
    setup: Setup, certificates: Certificates
) -> None:
    setup.write_token()
    setup.control_plane.stop()
    with (
        name_server("backend-a") as port,
        run_envoy(setup.bootstrap(certificates), setup.directory) as envoy,
    ):
        # Down: Envoy retries the stream with a backoff, and stays un-initialized.
        envoy.wait_until(lambda: envoy.log().count("config stream to") >= 2, "two failed attempts")
        assert envoy.ready() == (503, "PRE_INITIALIZING")
        # Up but serving nothing yet: past Envoy's default initial fetch timeout, still waiting.
        setup.control_plane.start()
        setup.control_plane.wait_for_stream()
        watch_until = time.monotonic() + ENVOY_DEFAULT_INITIAL_FETCH_TIMEOUT + 2
        while time.monotonic() < watch_until:
            assert envoy.ready() == (503, "PRE_INITIALIZING")
            time.sleep(0.5)
        configured(envoy, setup.control_plane, serve_backend(setup.control_plane, port))
        assert read_name(envoy.listener_port("edge")) == "backend-a"


def test_a_stopped_control_plane_leaves_the_configuration_working_and_envoy_reconnects(
    setup: Setup, certificates: Certificates
) -> None:
    setup.write_token()
    with (
        name_server("backend-a") as port,
        run_envoy(setup.bootstrap(certificates), setup.directory) as envoy,
    ):
        configured(envoy, setup.control_plane, serve_backend(setup.control_plane, port))
        setup.control_plane.stop()
        envoy.wait_until(lambda: envoy.stat("control_plane.connected_state") == 0, "disconnected")
        assert read_name(envoy.listener_port("edge")) == "backend-a"
        assert envoy.ready() == (200, "LIVE")
        mark = len(setup.control_plane.events)
        setup.control_plane.start()
        setup.control_plane.wait_for_stream(after=mark)
        setup.control_plane.wait_for_ack(LISTENER, "1", after=mark)
        envoy.wait_until(lambda: envoy.stat("control_plane.connected_state") == 1, "reconnected")


def test_the_next_stream_presents_the_token_the_kubelet_rotated(
    setup: Setup, certificates: Certificates
) -> None:
    first = setup.write_token(service_account="web")
    with (
        name_server("backend-a") as port,
        run_envoy(setup.bootstrap(certificates), setup.directory) as envoy,
    ):
        configured(envoy, setup.control_plane, serve_backend(setup.control_plane, port))
        assert setup.control_plane.streams()[0]["token_digest"] == _digest(first)
        rotated = setup.write_token(service_account="web-rotated")
        # A control plane that wants a fresh token ends the stream; Envoy opens a new one.
        setup.control_plane.stop()
        mark = len(setup.control_plane.events)
        setup.control_plane.start()
        stream = setup.control_plane.wait_for_stream(after=mark)
    assert stream["token_digest"] == _digest(rotated)
    assert stream["subject"] == "system:serviceaccount:shop:web-rotated"


def test_a_token_for_another_audience_is_refused_and_envoy_stays_unready(
    setup: Setup, certificates: Certificates
) -> None:
    setup.write_token(audience="kubernetes")
    with run_envoy(setup.bootstrap(certificates), setup.directory) as envoy:
        refused = setup.control_plane.wait_for_stream(accepted=False)
        again = setup.control_plane.events.index(refused) + 1
        setup.control_plane.wait_for_stream(accepted=False, after=again)  # it retries
        assert refused["reason"].startswith("InvalidAudienceError")
        assert envoy.ready() == (503, "PRE_INITIALIZING")
    assert all(not stream["accepted"] for stream in setup.control_plane.streams())


def test_no_token_file_means_no_stream(setup: Setup, certificates: Certificates) -> None:
    with run_envoy(setup.bootstrap(certificates), setup.directory) as envoy:
        envoy.wait_until(lambda: envoy.log().count("config stream to") >= 2, "two failed attempts")
        assert envoy.ready() == (503, "PRE_INITIALIZING")
    assert setup.control_plane.streams() == []


@pytest.mark.parametrize(
    ("case", "serve_with", "server_name"),
    [
        ("another CA signed the control plane's certificate", "other_ca_server", SERVER_NAME),
        ("the certificate does not name the address", "server", None),
        ("the certificate does not name the configured server name", "server", "other.example"),
    ],
)
def test_envoy_refuses_a_control_plane_it_cannot_verify(
    tmp_path: Path, certificates: Certificates, case: str, serve_with: str, server_name: str | None
) -> None:
    with run_control_plane(tls=getattr(certificates, serve_with)) as control_plane:
        control_plane.set()
        bootstrap = ads_bootstrap(control_plane.port, ca=certificates.ca, server_name=server_name)
        with run_envoy(bootstrap, tmp_path) as envoy:
            envoy.wait_until(lambda: envoy.log().count("config stream to") >= 2, case)
            assert envoy.ready() == (503, "PRE_INITIALIZING")
        assert control_plane.streams() == [], case


def test_envoy_verifies_the_control_plane_by_the_configured_server_name(
    tmp_path: Path, certificates: Certificates
) -> None:
    with run_control_plane(tls=certificates.server) as control_plane:
        control_plane.set()
        bootstrap = ads_bootstrap(control_plane.port, ca=certificates.ca, server_name=SERVER_NAME)
        with run_envoy(bootstrap, tmp_path) as envoy:
            stream = control_plane.wait_for_stream()
            envoy.wait_until(lambda: envoy.ready() == (200, "LIVE"), "Envoy ready")
    assert stream["authorization"] is False  # no token configured, none sent


def _digest(token: str) -> str:
    """How the control plane names a token it saw (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]
