"""The rendered proxy with a control plane, for generated combinations of the options: Envoy
accepts its command line (`envoy --mode validate`), and the kubelet's expansion of its
arguments gives a bootstrap whose node metadata names the Pod and what its rules capture."""

import json
from functools import cache
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from envoy_validation import EXAMPLE_ENV, EXAMPLE_LABELS, expanded_args, validate_proxy_container
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes_schema import validate_pod

from injector.cluster.dev_certs import create_dev_certificates
from injector.core.config import InjectorConfig
from injector.core.keys import PROXY_CONTAINER, PROXY_TOKEN_DIR, PROXY_TOKEN_VOLUME
from injector.core.render import render

LABEL_KEYS = ["app", "version", "app.kubernetes.io/name", "tier", "example.com/team"]
IP_FAMILIES = [["IPv4", "IPv6"], ["IPv4"], ["IPv6"]]


@cache
def ca_certificate() -> str:
    with TemporaryDirectory() as directory:
        create_dev_certificates(Path(directory), ["control-plane.mesh-system.svc"])
        return (Path(directory) / "ca.crt").read_text()


@st.composite
def control_planes(draw: st.DrawFn) -> dict[str, Any]:
    host = draw(st.sampled_from(["control-plane.mesh-system.svc", "10.96.0.12", "fd00::12"]))
    section: dict[str, Any] = {
        "address": {"host": host, "port": draw(st.integers(1, 65535))},
        "tls": {"mode": draw(st.sampled_from(["off", "verify"]))},
        "podLabels": draw(st.lists(st.sampled_from(LABEL_KEYS), unique=True, max_size=5)),
    }
    if section["tls"]["mode"] == "verify":
        section["tls"]["caCertificate"] = ca_certificate()
        if draw(st.booleans()):
            section["tls"]["serverName"] = draw(st.sampled_from(["cp.example", "istiod.mesh"]))
        if draw(st.booleans()):
            audience = draw(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1))
            seconds = draw(st.integers(600, 2**32))
            section["token"] = {"audience": audience, "expirationSeconds": seconds}
    return section


@st.composite
def configurations(draw: st.DrawFn) -> InjectorConfig:
    ports = draw(st.lists(st.integers(1024, 65535), min_size=5, max_size=5, unique=True))
    names = ("outbound", "inbound", "admin", "health", "metrics")
    return InjectorConfig.model_validate(
        {
            "controlPlane": draw(control_planes()),
            "interception": {"ipFamilies": draw(st.sampled_from(IP_FAMILIES))},
            "nativeSidecar": draw(st.booleans()),
            "holdApplicationUntilProxyReady": draw(st.booleans()),
            "proxy": {
                "logLevel": draw(st.sampled_from(["info", "debug", "warning", "off"])),
                "ports": dict(zip(names, ports, strict=True)),
                "healthPath": draw(st.sampled_from(["/healthz/ready", "/ready$(POD_NAME)"])),
            },
        }
    )


def _proxy(config: InjectorConfig) -> dict[str, Any]:
    injection = render(config)
    containers = (*injection.leading_init_containers, *injection.leading_containers)
    containers += (*injection.trailing_containers,)
    return next(c for c in containers if c["name"] == PROXY_CONTAINER)


def _bootstrap(proxy: dict[str, Any]) -> dict[str, Any]:
    """The bootstrap Envoy reads once the kubelet has expanded the arguments."""
    env = dict(EXAMPLE_ENV)
    for var in proxy["env"]:
        path = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "")
        if path.startswith("metadata.labels['"):
            env[var["name"]] = EXAMPLE_LABELS.get(path[len("metadata.labels['") : -2], "")
    args = expanded_args(proxy["args"], env)
    return json.loads(args[args.index("--config-yaml") + 1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=configurations())
def test_envoy_accepts_every_rendered_control_plane_bootstrap(config: InjectorConfig) -> None:
    proxy = _proxy(config)
    validate_proxy_container(proxy)
    section = config.control_plane
    assert section is not None

    bootstrap = _bootstrap(proxy)
    assert bootstrap["node"]["metadata"] == {
        "NAME": EXAMPLE_ENV["POD_NAME"],
        "NAMESPACE": EXAMPLE_ENV["POD_NAMESPACE"],
        "SERVICE_ACCOUNT": EXAMPLE_ENV["SERVICE_ACCOUNT"],
        "POD_IP": EXAMPLE_ENV["POD_IP"],
        "NODE_NAME": EXAMPLE_ENV["NODE_NAME"],
        "LABELS": {key: EXAMPLE_LABELS.get(key, "") for key in section.pod_labels},
        "INTERCEPTION": {
            "IP_FAMILIES": list(config.interception.ip_families),
            "OUTBOUND_PORT": config.proxy.ports.outbound,
            "INBOUND_PORT": config.proxy.ports.inbound,
        },
    }
    # Only the health and metrics listener is static; the rest comes over ADS.
    assert [item["name"] for item in bootstrap["static_resources"]["listeners"]] == [
        "health_metrics"
    ]
    assert [item["name"] for item in bootstrap["static_resources"]["clusters"]] == ["admin"]

    mounts = {mount["name"]: mount for mount in proxy["volumeMounts"]}
    if section.token is None:
        assert PROXY_TOKEN_VOLUME not in mounts
    else:
        assert mounts[PROXY_TOKEN_VOLUME] == {
            "name": PROXY_TOKEN_VOLUME,
            "mountPath": PROXY_TOKEN_DIR,
            "readOnly": True,
        }
    # The API server accepts the container and its volumes (as an app container here).
    container = {key: value for key, value in proxy.items() if key != "restartPolicy"}
    volumes = json.loads(json.dumps(render(config).volumes))
    validate_pod(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-7d9c6"},
            "spec": {"containers": [container], "volumes": volumes},
        }
    )
