"""Removing the proxy from a workload: exactly what its status annotation says was injected.

The status lists the names of the containers, volumes, annotations and labels the injector
added, and the arrays and objects it created, which are deleted again once they are empty.
Nothing else in the Pod or template is touched.
"""

import copy
from dataclasses import dataclass
from typing import Any

import orjson
from jsonpointer import JsonPointer

from injector.keys import Keys
from injector.manifests import ManifestError, describe_value
from injector.manifests_workloads import Workload

_LISTS = ("initContainers", "containers", "volumes", "annotations", "labels", "created")


@dataclass(frozen=True)
class InjectionStatus:
    init_containers: frozenset[str]
    containers: frozenset[str]
    volumes: frozenset[str]
    annotations: frozenset[str]
    labels: frozenset[str]
    created: tuple[str, ...]  # JSON Pointers into the Pod


def injection_status(workload: Workload, keys: Keys) -> InjectionStatus | None:
    """The workload's status annotation, or None when it has none (it is not injected)."""
    metadata = workload.holder.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    text = annotations.get(keys.status) if isinstance(annotations, dict) else None
    if text is None:
        return None
    field = workload.field(f"metadata.annotations[{keys.status}]")
    try:
        status = orjson.loads(str(text)) if isinstance(text, str) else None
    except orjson.JSONDecodeError:
        status = None
    if not isinstance(status, dict):
        raise ManifestError(f"{workload.describe()}: {field} is not a JSON object")
    for name in _LISTS:
        value = status.get(name, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ManifestError(
                f"{workload.describe()}: {field}: {name} must be a list of strings, "
                f"not {describe_value(value)}"
            )
    created = status.get("created", [])
    if not all(pointer.startswith("/") for pointer in created):
        raise ManifestError(f"{workload.describe()}: {field}: created must list JSON Pointers")
    return InjectionStatus(
        init_containers=frozenset(status.get("initContainers", [])),
        containers=frozenset(status.get("containers", [])),
        volumes=frozenset(status.get("volumes", [])),
        annotations=frozenset(status.get("annotations", [])),
        labels=frozenset(status.get("labels", [])),
        created=tuple(created),
    )


def uninject(workload: Workload, keys: Keys) -> bool:
    """Removes the injection in place; False when the workload has no status annotation."""
    status = injection_status(workload, keys)
    if status is None:
        return False
    pod = copy.deepcopy(workload.pod())  # a copy, so that YAML anchors elsewhere stay as they are
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        raise ManifestError(f"{workload.describe()}: {workload.field('spec')} must be a mapping")
    metadata = pod["metadata"]
    _remove_named(spec.get("initContainers"), status.init_containers)
    _remove_named(spec.get("containers"), status.containers)
    _remove_named(spec.get("volumes"), status.volumes)
    _remove_keys(metadata.get("annotations"), status.annotations)
    _remove_keys(metadata.get("labels"), status.labels)
    for pointer in sorted(status.created, key=lambda p: p.count("/"), reverse=True):
        _remove_if_empty(pod, pointer)
    workload.replace_pod(pod)
    return True


def _remove_named(items: Any, names: frozenset[str]) -> None:
    if not isinstance(items, list):
        return
    for index in reversed(range(len(items))):
        if isinstance(items[index], dict) and items[index].get("name") in names:
            del items[index]


def _remove_keys(mapping: Any, keys: frozenset[str]) -> None:
    if isinstance(mapping, dict):
        for key in keys & mapping.keys():
            del mapping[key]


def _remove_if_empty(pod: dict[str, Any], pointer: str) -> None:
    *parents, last = JsonPointer(pointer).parts
    container: Any = pod
    for token in parents:
        container = container.get(token) if isinstance(container, dict) else None
    if isinstance(container, dict) and last in container and container[last] in ({}, []):
        del container[last]
