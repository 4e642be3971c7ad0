"""Removing the proxy from a workload: exactly what its status annotation says was injected.

The status lists the names of the containers, volumes, annotations and labels the injector
added, and the arrays and objects it created, which are deleted again once they are empty.
Nothing else in the Pod or template is touched.
"""

import copy
from typing import Any

from jsonpointer import JsonPointer

from injector.core.keys import Keys
from injector.core.status import InjectionStatus
from injector.errors import InvalidStatus, ManifestError
from injector.manifests.workloads import Workload


def injection_status(workload: Workload, keys: Keys) -> InjectionStatus | None:
    """The workload's status record, or None when it has none (it is not injected)."""
    metadata = workload.holder.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    text = annotations.get(keys.status) if isinstance(annotations, dict) else None
    if text is None:
        return None
    try:
        return InjectionStatus.from_annotation(text)
    except InvalidStatus as error:
        field = workload.field(f"metadata.annotations[{keys.status}]")
        raise ManifestError(f"{workload.describe()}: {field}: {error}") from None


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
    _remove_named(spec.get("initContainers"), set(status.init_containers))
    _remove_named(spec.get("containers"), set(status.containers))
    _remove_named(spec.get("volumes"), set(status.volumes))
    _remove_keys(metadata.get("annotations"), set(status.annotations))
    _remove_keys(metadata.get("labels"), set(status.labels))
    for pointer in sorted(status.created, key=lambda p: p.count("/"), reverse=True):
        _remove_if_empty(pod, pointer)
    workload.replace_pod(pod)
    return True


def _remove_named(items: Any, names: set[str]) -> None:
    if not isinstance(items, list):
        return
    for index in reversed(range(len(items))):
        if isinstance(items[index], dict) and items[index].get("name") in names:
            del items[index]


def _remove_keys(mapping: Any, keys: set[str]) -> None:
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
