"""What is injected into a Pod: containers, volumes, annotations and labels.

Everything here depends only on the Pod's effective configuration (the configuration with its
override annotations applied), never on the rest of the Pod, so one rendering serves every Pod
with the same overrides.
"""

from dataclasses import dataclass
from typing import Any

from injector.core.config import InjectorConfig
from injector.core.iptables import Interception, ruleset
from injector.core.keys import (
    INIT_CONTAINER,
    INIT_CONTAINER_IPV6,
    IPTABLES_VOLUME,
    PROXY_CONTAINER,
    PROXY_TMP_VOLUME,
    XTABLES_LOCK_VOLUME,
    Keys,
)

IPTABLES_DIR = "/etc/mesh/iptables"
IPTABLES_FILE = "rules"

# Per captured family: the init container, and the tool that applies the ruleset.
INIT_CONTAINERS = {"IPv4": INIT_CONTAINER, "IPv6": INIT_CONTAINER_IPV6}
# In the iptables image, iptables-restore is the iptables-wrapper, which picks the nf_tables or
# the legacy backend from the kubelet's rules; a Pod's namespace has none, so it picks
# nf_tables. IPv6 names nf_tables itself: on a kernel booted without IPv6 (ipv6.disable=1),
# the legacy ip6tables cannot initialize its nat table and would fail the Pod, whereas
# nf_tables loads the rules, which then match nothing.
RESTORE_COMMANDS = {"IPv4": "iptables-restore", "IPv6": "ip6tables-nft-restore"}

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


def render(config: InjectorConfig) -> Injection:
    """What to add for a Pod's effective configuration (see `injector.core.settings`)."""
    keys = Keys(config.annotation_prefix)
    inits = tuple(_init_container(config, family) for family in config.interception.ip_families)
    proxy = _proxy_container(config)
    native = config.native_sidecar
    hold_classic = not native and config.hold_application_until_proxy_ready
    return Injection(
        # A native proxy starts right after the rules, so the Pod's own init containers already
        # have it. A classic proxy only starts with the app containers, so its rules come after
        # the Pod's own init containers, which keep a working network.
        leading_init_containers=(*inits, proxy) if native else (),
        trailing_init_containers=() if native else inits,
        leading_containers=(proxy,) if hold_classic else (),
        trailing_containers=() if native or hold_classic else (proxy,),
        volumes=_volumes(keys),
        annotations={keys.iptables_rules: ruleset(Interception.from_config(config))},
        labels={keys.injected_label: "true"},
    )


def _init_container(config: InjectorConfig, family: str) -> Json:
    """The init container that applies the ruleset to one family (IPv4 or IPv6)."""
    return {
        "name": INIT_CONTAINERS[family],
        "image": config.init.image,
        "command": [RESTORE_COMMANDS[family], f"{IPTABLES_DIR}/{IPTABLES_FILE}"],
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


def _proxy_container(config: InjectorConfig) -> Json:
    proxy, ports = config.proxy, config.proxy.ports
    native, hold = config.native_sidecar, config.hold_application_until_proxy_ready
    health_check = {"httpGet": {"path": proxy.health_path, "port": ports.health}}
    container: Json = {"name": PROXY_CONTAINER, "image": proxy.image}
    if proxy.args:
        container["args"] = list(proxy.args)
    container["env"] = [
        _field_env("POD_NAME", "metadata.name"),
        _field_env("POD_NAMESPACE", "metadata.namespace"),
        _field_env("POD_IP", "status.podIP"),
        _field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        _field_env("NODE_NAME", "spec.nodeName"),
        {"name": "PROXY_LOG_LEVEL", "value": proxy.log_level},
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
    if native and hold:
        # The kubelet starts the next container only once a native sidecar has started.
        container["startupProbe"] = {**health_check, "periodSeconds": 1, "failureThreshold": 600}
    if not native and hold and proxy.wait_command:
        # The kubelet starts the next container only once postStart has returned.
        container["lifecycle"] = {"postStart": {"exec": {"command": list(proxy.wait_command)}}}
    container["resources"] = proxy.resources.as_kubernetes()
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
    if native:
        container["restartPolicy"] = "Always"
    return container


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
