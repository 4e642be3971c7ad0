"""What is injected into a Pod for given settings: containers, volumes, annotations, labels.

Everything here depends only on the configuration and the Pod's settings, never on the rest of
the Pod, so one rendering serves every Pod with the same settings.
"""

from dataclasses import dataclass
from typing import Any

from injector.config import InjectorConfig
from injector.iptables import Interception, ruleset
from injector.keys import (
    INIT_CONTAINER,
    IPTABLES_VOLUME,
    PROXY_CONTAINER,
    PROXY_TMP_VOLUME,
    XTABLES_LOCK_VOLUME,
    Keys,
)
from injector.overrides import ProxySettings

IPTABLES_DIR = "/etc/mesh/iptables"
IPTABLES_FILE = "rules"

Json = dict[str, Any]


@dataclass(frozen=True)
class Injection:
    """The pieces to add, and where: the engine turns them into patch operations."""

    leading_init_containers: tuple[Json, ...]  # before the Pod's own init containers
    trailing_init_containers: tuple[Json, ...]  # after them
    leading_containers: tuple[Json, ...]
    trailing_containers: tuple[Json, ...]
    volumes: tuple[Json, ...]
    annotations: dict[str, str]
    labels: dict[str, str]

    @property
    def init_container_names(self) -> list[str]:
        return [c["name"] for c in (*self.leading_init_containers, *self.trailing_init_containers)]

    @property
    def container_names(self) -> list[str]:
        return [c["name"] for c in (*self.leading_containers, *self.trailing_containers)]

    @property
    def volume_names(self) -> list[str]:
        return [v["name"] for v in self.volumes]


def render(config: InjectorConfig, settings: ProxySettings) -> Injection:
    keys = Keys(config.annotation_prefix)
    init = _init_container(config)
    proxy = _proxy_container(config, settings)
    native = settings.native_sidecar
    hold_classic = not native and settings.hold_application
    return Injection(
        # A native proxy starts right after the rules, so the Pod's own init containers already
        # have it. A classic proxy only starts with the app containers, so its rules come after
        # the Pod's own init containers, which keep a working network.
        leading_init_containers=(init, proxy) if native else (),
        trailing_init_containers=() if native else (init,),
        leading_containers=(proxy,) if hold_classic else (),
        trailing_containers=() if native or hold_classic else (proxy,),
        volumes=_volumes(keys),
        annotations={keys.iptables_rules: ruleset(_interception(config, settings))},
        labels={keys.injected_label: "true"},
    )


def _interception(config: InjectorConfig, settings: ProxySettings) -> Interception:
    ports = config.proxy.ports
    return Interception(
        proxy_uid=config.proxy.uid,
        proxy_gid=config.proxy.gid,
        outbound_port=ports.outbound,
        inbound_port=ports.inbound,
        served_ports=(ports.health, ports.metrics),
        include_inbound_ports=settings.include_inbound_ports,
        exclude_inbound_ports=settings.exclude_inbound_ports,
        exclude_outbound_ports=settings.exclude_outbound_ports,
        exclude_outbound_cidrs=settings.exclude_outbound_cidrs,
    )


def _init_container(config: InjectorConfig) -> Json:
    return {
        "name": INIT_CONTAINER,
        "image": config.init.image,
        "command": ["iptables-restore", f"{IPTABLES_DIR}/{IPTABLES_FILE}"],
        "resources": config.init.resources.as_kubernetes(),
        "securityContext": {
            # Explicit, so that a Pod-level runAsNonRoot or runAsUser does not apply here.
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": False,
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": IPTABLES_VOLUME, "mountPath": IPTABLES_DIR, "readOnly": True},
            # iptables takes its lock in /run, which the read-only root cannot hold.
            {"name": XTABLES_LOCK_VOLUME, "mountPath": "/run"},
        ],
    }


def _field_env(name: str, field_path: str) -> Json:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": field_path}}}


def _proxy_container(config: InjectorConfig, settings: ProxySettings) -> Json:
    proxy, ports = config.proxy, config.proxy.ports
    health_check = {"httpGet": {"path": proxy.health_path, "port": ports.health}}
    container: Json = {"name": PROXY_CONTAINER, "image": settings.proxy_image}
    if proxy.args:
        container["args"] = list(proxy.args)
    container["env"] = [
        _field_env("POD_NAME", "metadata.name"),
        _field_env("POD_NAMESPACE", "metadata.namespace"),
        _field_env("POD_IP", "status.podIP"),
        _field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        _field_env("NODE_NAME", "spec.nodeName"),
        {"name": "PROXY_LOG_LEVEL", "value": settings.log_level},
        {"name": "PROXY_OUTBOUND_PORT", "value": str(ports.outbound)},
        {"name": "PROXY_INBOUND_PORT", "value": str(ports.inbound)},
        {"name": "PROXY_ADMIN_PORT", "value": str(ports.admin)},
        {"name": "PROXY_HEALTH_PORT", "value": str(ports.health)},
        {"name": "PROXY_METRICS_PORT", "value": str(ports.metrics)},
        *({"name": var.name, "value": var.value} for var in proxy.env),
    ]
    container["ports"] = [
        {"name": "mesh-health", "containerPort": ports.health, "protocol": "TCP"},
        {"name": "mesh-metrics", "containerPort": ports.metrics, "protocol": "TCP"},
    ]
    container["readinessProbe"] = {**health_check, "periodSeconds": 2, "failureThreshold": 30}
    if settings.native_sidecar and settings.hold_application:
        # The kubelet starts the next container only once a native sidecar has started.
        container["startupProbe"] = {**health_check, "periodSeconds": 1, "failureThreshold": 600}
    if not settings.native_sidecar and settings.hold_application and proxy.wait_command:
        # The kubelet starts the next container only once postStart has returned.
        container["lifecycle"] = {"postStart": {"exec": {"command": list(proxy.wait_command)}}}
    container["resources"] = _resources(settings)
    container["securityContext"] = {
        "runAsUser": proxy.uid,
        "runAsGroup": proxy.gid,
        "runAsNonRoot": True,
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    container["volumeMounts"] = [{"name": PROXY_TMP_VOLUME, "mountPath": "/tmp"}]
    if settings.native_sidecar:
        container["restartPolicy"] = "Always"
    return container


def _resources(settings: ProxySettings) -> Json:
    requests = {"cpu": settings.cpu_request, "memory": settings.memory_request}
    limits = {"cpu": settings.cpu_limit, "memory": settings.memory_limit}
    resources = {
        "requests": {k: v for k, v in requests.items() if v},
        "limits": {k: v for k, v in limits.items() if v},
    }
    return {kind: values for kind, values in resources.items() if values}


def _volumes(keys: Keys) -> tuple[Json, ...]:
    rules_path = f"metadata.annotations['{keys.iptables_rules}']"
    return (
        {
            "name": IPTABLES_VOLUME,
            "downwardAPI": {
                "items": [
                    {
                        "path": IPTABLES_FILE,
                        "fieldRef": {"apiVersion": "v1", "fieldPath": rules_path},
                    }
                ]
            },
        },
        {"name": XTABLES_LOCK_VOLUME, "emptyDir": {}},
        {"name": PROXY_TMP_VOLUME, "emptyDir": {}},
    )
