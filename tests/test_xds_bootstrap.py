"""The bootstrap's control-plane part: ADS over the google_grpc client, TLS, the token file."""

import json
from typing import Any

import pytest
from kubernetes_schema import validate_pod

from injector.cluster.dev_certs import create_dev_certificates
from injector.core import xds
from injector.core.config import ControlPlaneConfig, InjectorConfig
from injector.core.keys import PROXY_CONTAINER, PROXY_TOKEN_DIR
from injector.core.render import render


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("ca")
    create_dev_certificates(out, ["control-plane.mesh-system.svc"])
    return (out / "ca.crt").read_text()


def control_plane(ca: str, **fields: Any) -> ControlPlaneConfig:
    section = {
        "address": {"host": "control-plane.mesh-system.svc", "port": 15012},
        "tls": {"mode": "verify", "caCertificate": ca},
        "token": {"audience": "mesh"},
        "podLabels": ["app", "version"],
        **fields,
    }
    return ControlPlaneConfig.model_validate(section)


def _client(config: ControlPlaneConfig) -> dict[str, Any]:
    services = xds.dynamic_resources(config)["ads_config"]["grpc_services"]
    assert len(services) == 1
    return services[0]["google_grpc"]


def test_listeners_and_clusters_come_over_one_ads_stream_and_are_waited_for(ca: str) -> None:
    resources = xds.dynamic_resources(control_plane(ca))
    ads = resources["ads_config"]
    assert (ads["api_type"], ads["transport_api_version"]) == ("GRPC", "V3")
    for kind in ("lds_config", "cds_config"):
        assert resources[kind] == {
            "ads": {},
            "resource_api_version": "V3",
            "initial_fetch_timeout": "0s",
        }


@pytest.mark.parametrize(
    ("host", "target"),
    [
        ("control-plane.mesh-system.svc", "control-plane.mesh-system.svc:15012"),
        ("10.96.0.12", "10.96.0.12:15012"),
        ("fd00::12", "[fd00::12]:15012"),
    ],
)
def test_the_target_is_the_address(ca: str, host: str, target: str) -> None:
    config = control_plane(ca, address={"host": host, "port": 15012})
    assert _client(config)["target_uri"] == target


def test_tls_verifies_against_the_inline_ca_and_the_server_name(ca: str) -> None:
    config = control_plane(ca, tls={"mode": "verify", "caCertificate": ca, "serverName": "cp.mesh"})
    client = _client(config)
    assert client["channel_credentials"] == {
        "ssl_credentials": {"root_certs": {"inline_string": ca}}
    }
    assert client["channel_args"] == {
        "args": {"grpc.ssl_target_name_override": {"string_value": "cp.mesh"}}
    }


def test_the_token_file_is_read_by_the_file_based_metadata_credentials(ca: str) -> None:
    client = _client(control_plane(ca))
    assert client["credentials_factory_name"] == "envoy.grpc_credentials.file_based_metadata"
    (credentials,) = client["call_credentials"]
    plugin = credentials["from_plugin"]
    assert plugin["name"] == "envoy.grpc_credentials.file_based_metadata"
    assert plugin["typed_config"]["secret_data"] == {"filename": f"{PROXY_TOKEN_DIR}/token"}
    assert plugin["typed_config"]["header_prefix"] == "Bearer "


def test_plain_text_has_no_credentials_at_all(ca: str) -> None:
    config = control_plane(ca, tls={"mode": "off"}, token=None)
    assert set(_client(config)) == {"target_uri", "stat_prefix"}


def test_node_metadata_is_expanded_from_downward_api_variables(ca: str) -> None:
    config = control_plane(ca)
    metadata = xds.node_metadata(config, ("IPv4", "IPv6"), 15001, 15006)
    assert metadata == {
        "NAME": "$(POD_NAME)",
        "NAMESPACE": "$(POD_NAMESPACE)",
        "SERVICE_ACCOUNT": "$(SERVICE_ACCOUNT)",
        "POD_IP": "$(POD_IP)",
        "NODE_NAME": "$(NODE_NAME)",
        "LABELS": {"app": "$(POD_LABEL_0)", "version": "$(POD_LABEL_1)"},
        "INTERCEPTION": {
            "IP_FAMILIES": ["IPv4", "IPv6"],
            "OUTBOUND_PORT": 15001,
            "INBOUND_PORT": 15006,
        },
    }
    labels = {"POD_LABEL_0": "metadata.labels['app']", "POD_LABEL_1": "metadata.labels['version']"}
    assert xds.label_variables(config) == labels
    # In the proxy's env, and valid there for the API server.
    (proxy,) = [
        container
        for container in render(InjectorConfig(control_plane=config)).containers
        if container["name"] == PROXY_CONTAINER
    ]
    variables = [var for var in proxy["env"] if var["name"] in labels]
    assert [(var["name"], var["valueFrom"]["fieldRef"]["fieldPath"]) for var in variables] == [
        ("POD_LABEL_0", "metadata.labels['app']"),
        ("POD_LABEL_1", "metadata.labels['version']"),
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "env": variables}]},
    }
    validate_pod(json.loads(json.dumps(pod)))
