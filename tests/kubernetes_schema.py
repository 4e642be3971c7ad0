"""Checks a Pod the way a Kubernetes v1.32 API server would, as far as it can be done offline.

The OpenAPI schema (kubernetes-validate, strict: no unknown fields) checks shape and types; the
rules the schema cannot express and the API server enforces (see its pod validation) are checked
here: unique DNS-1123 names, port names, mounts of existing volumes, valid metadata keys,
restartPolicy only on init containers, requests within limits.
"""

import re
from typing import Any

import kubernetes_validate

from injector.kube.names import check_label_value, check_qualified_name
from injector.kube.quantity import parse_quantity

KUBERNETES_VERSION = "1.32.0"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ENV_FIELD_PATHS = re.compile(
    r"^(metadata\.(name|namespace|uid|labels|annotations)"
    r"|metadata\.(labels|annotations)\['[^']+'\]"
    r"|spec\.(nodeName|serviceAccountName)|status\.(hostIP|hostIPs|podIP|podIPs))$"
)
_VOLUME_FIELD_PATHS = re.compile(
    r"^(metadata\.(name|namespace|uid|labels|annotations)|metadata\.(labels|annotations)\['[^']+'\])$"
)


class InvalidPod(AssertionError):
    pass


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidPod(message)


def validate_object(obj: dict[str, Any]) -> None:
    """Schema validation of any Kubernetes object (Pod, Deployment, ...), strict."""
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        raise InvalidPod(f"schema: {error.message} at {list(error.path)}") from None


def validate_pod(pod: dict[str, Any]) -> None:
    validate_object(pod)
    validate_pod_rules(pod.get("metadata") or {}, pod["spec"])


def validate_pod_rules(metadata: dict[str, Any], spec: dict[str, Any]) -> None:
    """The API server's rules beyond the schema, for a Pod's or a template's metadata and spec."""
    for key, value in (metadata.get("labels") or {}).items():
        check_qualified_name(key)
        check_label_value(value)
    for key in metadata.get("annotations") or {}:
        check_qualified_name(key)

    volumes = spec.get("volumes") or []
    volume_names = [v["name"] for v in volumes]
    _check(len(set(volume_names)) == len(volume_names), f"duplicate volume names {volume_names}")
    for name in volume_names:
        _check(bool(_DNS_LABEL.match(name)) and len(name) <= 63, f"bad volume name {name!r}")
    for volume in volumes:
        for item in (volume.get("downwardAPI") or {}).get("items") or []:
            if "fieldRef" in item:
                path = item["fieldRef"]["fieldPath"]
                _check(bool(_VOLUME_FIELD_PATHS.match(path)), f"bad downwardAPI path {path!r}")

    init_containers = spec.get("initContainers") or []
    containers = spec["containers"]
    _check(len(containers) >= 1, "a Pod needs at least one container")
    names = [c["name"] for c in (*init_containers, *containers)]
    _check(len(set(names)) == len(names), f"duplicate container names {names}")
    for container in (*init_containers, *containers):
        _check_container(container, set(volume_names))
    for container in containers:
        _check(
            "restartPolicy" not in container, f"{container['name']}: restartPolicy on a container"
        )
    for container in init_containers:
        policy = container.get("restartPolicy")
        _check(policy in (None, "Always"), f"{container['name']}: restartPolicy {policy!r}")
        if policy != "Always":
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                _check(probe not in container, f"{container['name']}: {probe} on an init container")
    _check_pod_level_resources(spec.get("resources") or {}, containers, init_containers)


def _check_pod_level_resources(
    resources: dict[str, Any], containers: list[dict], init_containers: list[dict]
) -> None:
    """Pod-level resources bound the containers' (validatePodResourceConsistency): no app
    container's limit above the Pod's, and the Pod's requests at least what its containers
    request together (app containers and sidecars run together: a lower bound of the aggregate).
    """
    running = [*containers, *(c for c in init_containers if c.get("restartPolicy") == "Always")]
    for resource, pod_limit in (resources.get("limits") or {}).items():
        for container in containers:
            limit = ((container.get("resources") or {}).get("limits") or {}).get(resource)
            _check(
                limit is None or parse_quantity(str(limit)) <= parse_quantity(str(pod_limit)),
                f"{container['name']}: {resource} limit above the Pod's",
            )
    for resource, pod_request in (resources.get("requests") or {}).items():
        total = sum(
            parse_quantity(str(request))
            for container in running
            if (request := ((container.get("resources") or {}).get("requests") or {}).get(resource))
        )
        _check(
            total <= parse_quantity(str(pod_request)),
            f"the containers request more {resource} than the Pod",
        )


def _check_container(container: dict[str, Any], volume_names: set[str]) -> None:
    name = container["name"]
    _check(bool(_DNS_LABEL.match(name)) and len(name) <= 63, f"bad container name {name!r}")
    _check(bool(container.get("image")), f"{name}: no image")
    port_names = [p["name"] for p in container.get("ports") or [] if "name" in p]
    _check(len(set(port_names)) == len(port_names), f"{name}: duplicate port names")
    for port_name in port_names:
        _check(
            len(port_name) <= 15 and bool(_PORT_NAME.match(port_name)),
            f"{name}: bad port name {port_name!r}",
        )
    mount_paths = []
    for mount in container.get("volumeMounts") or []:
        _check(mount["name"] in volume_names, f"{name}: mounts unknown volume {mount['name']!r}")
        mount_paths.append(mount["mountPath"])
    _check(len(set(mount_paths)) == len(mount_paths), f"{name}: duplicate mount paths")
    for env in container.get("env") or []:
        field = ((env.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if field is not None:
            _check(bool(_ENV_FIELD_PATHS.match(field)), f"{name}: bad env fieldPath {field!r}")
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    for resource, request in requests.items():
        if resource in limits:
            _check(
                parse_quantity(str(request)) <= parse_quantity(str(limits[resource])),
                f"{name}: {resource} request above limit",
            )
    security = container.get("securityContext") or {}
    if security.get("allowPrivilegeEscalation") is False:
        _check(not security.get("privileged"), f"{name}: privileged without escalation")
        added = (security.get("capabilities") or {}).get("add") or []
        _check("SYS_ADMIN" not in added, f"{name}: SYS_ADMIN without escalation")
