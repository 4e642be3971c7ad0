"""What is injected into a Pod: containers, volumes, annotations and labels.

Everything here depends only on the Pod's effective configuration (the configuration with its
override annotations applied), never on the rest of the Pod, so one rendering serves every Pod
with the same overrides (`with_container_resources` then fits it to a Pod's QoS class). The
`envoy` kind of proxy gets its whole configuration in its command line (`injector.core.envoy`);
the `custom` kind runs its image with the configured args.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from injector.core import envoy, xds
from injector.core.config import InjectorConfig
from injector.core.iptables import Interception, ruleset
from injector.core.keys import (
    INIT_CONTAINER,
    INIT_CONTAINER_IPV6,
    IPTABLES_VOLUME,
    PROXY_CONTAINER,
    PROXY_TMP_VOLUME,
    PROXY_TOKEN_DIR,
    PROXY_TOKEN_FILE,
    PROXY_TOKEN_VOLUME,
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
    warnings: tuple[str, ...] = ()  # about the injection, for the requester

    @property
    def containers(self) -> tuple[Json, ...]:
        """Every container added, init containers first, each list in its order."""
        return (
            *self.leading_init_containers,
            *self.trailing_init_containers,
            *self.leading_containers,
            *self.trailing_containers,
        )

    @property
    def init_container_names(self) -> list[str]:
        return [c["name"] for c in (*self.leading_init_containers, *self.trailing_init_containers)]

    @property
    def container_names(self) -> list[str]:
        return [c["name"] for c in (*self.leading_containers, *self.trailing_containers)]

    @property
    def volume_names(self) -> list[str]:
        return [v["name"] for v in self.volumes]


UNHELD_CLASSIC_PROXY = (
    "the application is not held until the proxy is ready: a classic (non-native) proxy is "
    "held only by proxy.waitCommand, which the configuration does not set; the application "
    "may start before the proxy and its first connections may fail (a native sidecar, "
    "nativeSidecar or the native-sidecar annotation, is always held)"
)
UNUSED_HTTP_DETECTION = (
    "HTTP detection has no effect with a control plane: the control plane sends the proxy's "
    'listeners (with the control-plane annotation "false", the pass-through detects HTTP)'
)


def render(config: InjectorConfig) -> Injection:
    """What to add for a Pod's effective configuration (see `injector.core.settings`)."""
    keys = Keys(config.annotation_prefix)
    inits = tuple(_init_container(config, family) for family in config.interception.ip_families)
    proxy = _proxy_container(config)
    native = config.native_sidecar
    hold_classic = not native and _holds_classic(config)
    unheld = not native and config.hold_application_until_proxy_ready and not hold_classic
    return Injection(
        # A native proxy starts right after the rules, so the Pod's own init containers already
        # have it. A classic proxy only starts with the app containers, so its rules come after
        # the Pod's own init containers, which keep a working network.
        leading_init_containers=(*inits, proxy) if native else (),
        trailing_init_containers=() if native else inits,
        leading_containers=(proxy,) if hold_classic else (),
        trailing_containers=() if native or hold_classic else (proxy,),
        volumes=_volumes(config, keys),
        annotations={keys.iptables_rules: ruleset(Interception.from_config(config))},
        labels={keys.injected_label: "true"},
        warnings=tuple(
            warning
            for warning, applies in (
                (UNHELD_CLASSIC_PROXY, unheld),
                (UNUSED_HTTP_DETECTION, _unused_http_detection(config)),
            )
            if applies
        ),
    )


def _unused_http_detection(config: InjectorConfig) -> bool:
    proxy = config.proxy
    return proxy.kind == "envoy" and proxy.envoy.http_detection and bool(config.control_plane)


def _holds_classic(config: InjectorConfig) -> bool:
    """Whether a classic proxy holds the application: only a postStart hook can."""
    return config.hold_application_until_proxy_ready and bool(config.proxy.wait_command)


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
    native = config.native_sidecar
    health_check = {"httpGet": {"path": proxy.health_path, "port": ports.health}}
    container: Json = {"name": PROXY_CONTAINER, "image": proxy.image}
    downward_api = [
        _field_env("POD_NAME", "metadata.name"),
        _field_env("POD_NAMESPACE", "metadata.namespace"),
    ]
    workload = [
        _field_env("POD_IP", "status.podIP"),
        _field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        _field_env("NODE_NAME", "spec.nodeName"),
    ]
    if proxy.kind == "envoy":
        container["command"], container["args"] = envoy.command_line(
            _bootstrap_parameters(config), proxy.log_level, proxy.envoy.concurrency
        )
        if config.control_plane is not None:
            # The node metadata's values (see injector.core.xds).
            labels = xds.label_variables(config.control_plane)
            downward_api += [*workload, *(_field_env(*item) for item in labels.items())]
    else:
        if proxy.args:
            container["args"] = list(proxy.args)
        # A custom proxy configures itself from these.
        downward_api += [
            *workload,
            {"name": "PROXY_LOG_LEVEL", "value": proxy.log_level},
            {"name": "PROXY_OUTBOUND_PORT", "value": str(ports.outbound)},
            {"name": "PROXY_INBOUND_PORT", "value": str(ports.inbound)},
            {"name": "PROXY_ADMIN_PORT", "value": str(ports.admin)},
            {"name": "PROXY_HEALTH_PORT", "value": str(ports.health)},
            {"name": "PROXY_METRICS_PORT", "value": str(ports.metrics)},
        ]
    container["env"] = [
        *downward_api,
        *({"name": var.name, "value": var.value} for var in proxy.env),
    ]
    container["ports"] = [
        {"name": "mesh-health", "containerPort": ports.health, "protocol": "TCP"},
        {"name": "mesh-metrics", "containerPort": ports.metrics, "protocol": "TCP"},
    ]
    container["readinessProbe"] = {**health_check, "periodSeconds": 2, "failureThreshold": 30}
    if native:
        # Always: a native proxy comes before the Pod's own init containers, which the kubelet
        # starts only once it has started, i.e. once this probe has passed.
        container["startupProbe"] = {**health_check, "periodSeconds": 1, "failureThreshold": 600}
    elif _holds_classic(config):
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
    if config.control_plane is not None and config.control_plane.token is not None:
        container["volumeMounts"].append(
            {"name": PROXY_TOKEN_VOLUME, "mountPath": PROXY_TOKEN_DIR, "readOnly": True}
        )
    if native:
        container["restartPolicy"] = "Always"
    return container


def _bootstrap_parameters(config: InjectorConfig) -> envoy.BootstrapParameters:
    proxy, ports = config.proxy, config.proxy.ports
    return envoy.BootstrapParameters(
        admin_port=ports.admin,
        outbound_port=ports.outbound,
        inbound_port=ports.inbound,
        health_port=ports.health,
        health_path=proxy.health_path,
        metrics_port=ports.metrics,
        idle_timeout_seconds=proxy.envoy.idle_timeout_seconds,
        connect_timeout_seconds=proxy.envoy.connect_timeout_seconds,
        ip_families=config.interception.ip_families,
        control_plane=config.control_plane,
        http_detection=proxy.envoy.http_detection,
    )


def _volumes(config: InjectorConfig, keys: Keys) -> tuple[Json, ...]:
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
        *_token_volume(config),
    )


def _token_volume(config: InjectorConfig) -> tuple[Json, ...]:
    """The proxy's ServiceAccount token for the control plane, when one is configured.

    The API server gives its own token mount only to the containers present when it admits the
    Pod (before webhooks run), so the proxy gets a projected token of its own: the kubelet
    requests it for the Pod's ServiceAccount with the configured audience and lifetime, and
    rewrites the file before it expires (Kubernetes API, `ServiceAccountTokenProjection`). No
    `defaultMode`: the default (0644, or 0600 owned by the Pod's fsGroup or shared runAsUser)
    is what lets the proxy's uid read it.
    """
    if config.control_plane is None or config.control_plane.token is None:
        return ()
    token = config.control_plane.token
    projection = {
        "audience": token.audience,
        "expirationSeconds": token.expiration_seconds,
        "path": PROXY_TOKEN_FILE,
    }
    return (
        {
            "name": PROXY_TOKEN_VOLUME,
            "projected": {"sources": [{"serviceAccountToken": projection}]},
        },
    )


def with_container_resources(
    injection: Injection, adjust: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> Injection:
    """The injection with every container's `resources` replaced by `adjust(resources)`, in its
    place, and left out when that is empty: how the engine fits the injected containers to the
    Pod's QoS class."""

    def adjusted(container: Json) -> Json:
        result = dict(container)
        if "resources" in result:
            resources = adjust(result["resources"])
            if resources:
                result["resources"] = resources
            else:
                del result["resources"]
        return result

    return replace(
        injection,
        leading_init_containers=tuple(map(adjusted, injection.leading_init_containers)),
        trailing_init_containers=tuple(map(adjusted, injection.trailing_init_containers)),
        leading_containers=tuple(map(adjusted, injection.leading_containers)),
        trailing_containers=tuple(map(adjusted, injection.trailing_containers)),
    )
