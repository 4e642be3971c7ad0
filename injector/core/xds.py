"""What the proxy's bootstrap needs to take its configuration from an xDS control plane.

With a control plane configured, Envoy takes its listeners and clusters over ADS: one gRPC
stream (`AggregatedDiscoveryService.StreamAggregatedResources`, xDS v3, state of the world)
carries both (https://www.envoyproxy.io/docs/envoy/v1.40.0/api-docs/xds_protocol). These facts
of Envoy 1.40 decide its shape; tests/test_xds_control_plane.py shows each with the real Envoy:

- The stream uses Envoy's `google_grpc` client: only its call credentials read a token from a
  file for each new stream (`envoy.grpc_credentials.file_based_metadata`, whose
  `GetMetadata` reads the `DataSource` on every call), so the token the kubelet rotated is the
  one the next stream presents. The `envoy_grpc` client only has `initial_metadata`, fixed
  text in the bootstrap; `sts_service` needs a token exchange service. The file-based
  credentials always run over TLS (the factory builds TLS channel credentials), so a token is
  only presented with TLS on; with TLS off the channel is plain and carries no token.
- `initial_fetch_timeout: 0s` makes Envoy wait for the first clusters and listeners however long
  the control plane takes (the default gives up after 15 s and starts without them). Until
  then the server is not initialized: the admin `/ready` answers 503 and no listener, static
  ones included, accepts connections (Envoy starts every listener only once initialized), so
  the readiness probe fails until the first configuration has arrived and the Pod stays
  not-ready. A lost stream later keeps the configuration, and Envoy reconnects with backoff.
- The node identifies the Pod: its id and cluster come from `--service-node` and
  `--service-cluster`, its metadata (`node_metadata`) from Kubernetes' `$(VAR)` expansion of
  the Downward API variables of the proxy container, so one bootstrap serves every Pod.
  Labels reach the proxy one by one (a variable per configured label key, from
  `metadata.labels['key']`): the Downward API gives all labels only as a volume file, which
  Envoy cannot read into its node metadata.
- The node also says what the Pod's rules capture (`INTERCEPTION`): the IP families and the
  outbound and inbound ports. The capture listeners are the control plane's to serve, and the
  connections of a family captured without a listener are refused
  (tests/test_control_plane_pod.py). These values come from the Pod's effective configuration,
  not from the Downward API, so they are plain text in the bootstrap.
"""

import ipaddress
from typing import Any

from injector.core.config import ControlPlaneConfig
from injector.core.keys import PROXY_TOKEN_DIR, PROXY_TOKEN_FILE

Json = dict[str, Any]

TOKEN_PATH = f"{PROXY_TOKEN_DIR}/{PROXY_TOKEN_FILE}"
FILE_BASED_METADATA = "envoy.grpc_credentials.file_based_metadata"
TOKEN_HEADER = "authorization"  # the credentials' default header: `authorization: Bearer <token>`
STAT_PREFIX = "xds"
LABEL_VARIABLE = "POD_LABEL_{index}"


def label_variables(config: ControlPlaneConfig) -> dict[str, str]:
    """The proxy container's Downward API variables for the labels sent in the metadata: each
    variable's name to its field path.

    A label the Pod does not have gives an empty value (the Downward API's answer).
    """
    return {
        LABEL_VARIABLE.format(index=index): f"metadata.labels['{key}']"
        for index, key in enumerate(config.pod_labels)
    }


def node_metadata(
    config: ControlPlaneConfig,
    ip_families: tuple[str, ...],
    outbound_port: int,
    inbound_port: int,
) -> Json:
    """The node metadata: the Pod's identity, as `$(VAR)` references the kubelet expands in the
    proxy's arguments, and what its rules capture (`ip_families`, IPv4 and/or IPv6, sent to
    `outbound_port` and `inbound_port`), as given.

    Every reference expands to JSON-safe text: DNS names, an IP address, label values.
    """
    return {
        "NAME": "$(POD_NAME)",
        "NAMESPACE": "$(POD_NAMESPACE)",
        "SERVICE_ACCOUNT": "$(SERVICE_ACCOUNT)",
        "POD_IP": "$(POD_IP)",
        "NODE_NAME": "$(NODE_NAME)",
        "LABELS": {
            key: f"$({LABEL_VARIABLE.format(index=index)})"
            for index, key in enumerate(config.pod_labels)
        },
        "INTERCEPTION": {
            "IP_FAMILIES": list(ip_families),
            "OUTBOUND_PORT": outbound_port,
            "INBOUND_PORT": inbound_port,
        },
    }


def _target(config: ControlPlaneConfig) -> str:
    """gRPC's target for the address: `host:port`, an IPv6 address in brackets."""
    host = config.address.host
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a DNS name, resolved by gRPC
    return f"{host}:{config.address.port}"


def _google_grpc(config: ControlPlaneConfig) -> Json:
    client: Json = {"target_uri": _target(config), "stat_prefix": STAT_PREFIX}
    tls = config.tls
    if tls.mode == "verify":
        assert tls.ca_certificate is not None  # the model requires it
        client["channel_credentials"] = {
            "ssl_credentials": {"root_certs": {"inline_string": tls.ca_certificate}}
        }
        if tls.server_name is not None:
            # The name the certificate must carry (and the TLS server name indication).
            client["channel_args"] = {
                "args": {"grpc.ssl_target_name_override": {"string_value": tls.server_name}}
            }
    if config.token is not None:
        client["credentials_factory_name"] = FILE_BASED_METADATA
        client["call_credentials"] = [
            {
                "from_plugin": {
                    "name": FILE_BASED_METADATA,
                    "typed_config": {
                        "@type": "type.googleapis.com/"
                        "envoy.config.grpc_credential.v3.FileBasedMetadataConfig",
                        "secret_data": {"filename": TOKEN_PATH},
                        "header_prefix": "Bearer ",
                    },
                }
            }
        ]
    return client


def dynamic_resources(config: ControlPlaneConfig) -> Json:
    """The bootstrap's `dynamic_resources`: listeners and clusters over one ADS stream."""
    source = {"ads": {}, "resource_api_version": "V3", "initial_fetch_timeout": "0s"}
    return {
        "ads_config": {
            "api_type": "GRPC",
            "transport_api_version": "V3",
            "grpc_services": [{"google_grpc": _google_grpc(config)}],
            "set_node_on_first_message_only": True,
        },
        "lds_config": source,
        "cds_config": source,
    }
