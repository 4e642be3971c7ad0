"""Removing the proxy from a workload: exactly what its status annotation says was injected.

The status lists the names of the containers, volumes, annotations and labels the injector
added, and the arrays and objects it created, which are deleted again once they are empty.
Nothing else in the Pod or template is touched, and in the text only what is removed is cut
out (see `injector.manifests.edit`), so that `uninject` of what `inject` wrote gives back the
text it read.
"""

import copy
from typing import Any

from jsonpointer import JsonPointer

from injector.core.keys import Keys
from injector.core.status import InjectionStatus
from injector.errors import InvalidStatus, ManifestError
from injector.manifests.documents import Document
from injector.manifests.edit import Rewrite, rewrite
from injector.manifests.workloads import Workload, find_workloads


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


def uninject(workload: Workload, keys: Keys, data: dict[str, Any]) -> bool:
    """Removes the injection from the workload's Pod in `data`, a copy of its document's
    object; False when the workload has no status annotation (it is not injected).

    ManifestError for a status annotation the injector did not write, or a Pod without spec.
    """
    status = injection_status(workload, keys)
    if status is None:
        return False
    holder = workload.holder_in(data)
    spec = holder.get("spec")
    if not isinstance(spec, dict):
        raise ManifestError(f"{workload.describe()}: {workload.field('spec')} must be a mapping")
    # Copies, so that what the YAML shares through anchors changes only in the template.
    spec = holder["spec"] = copy.deepcopy(spec)
    metadata = holder["metadata"] = copy.deepcopy(holder["metadata"])
    _remove_named(spec.get("initContainers"), set(status.init_containers))
    _remove_named(spec.get("containers"), set(status.containers))
    _remove_named(spec.get("volumes"), set(status.volumes))
    _remove_keys(metadata.get("annotations"), set(status.annotations))
    _remove_keys(metadata.get("labels"), set(status.labels))
    for pointer in sorted(status.created, key=lambda p: p.count("/"), reverse=True):
        _remove_if_empty(holder, pointer)
    return True


def uninject_document(document: Document, keys: Keys) -> tuple[list[bool], Rewrite | None]:
    """For each of the document's workloads, whether it was uninjected; and the document
    without what was injected, None when nothing was.

    ManifestError as `uninject`, and for a workload without a usable Pod template.
    """
    data = copy.deepcopy(document.data)
    results = [uninject(w, keys, data) for w in find_workloads(document).workloads]
    return results, rewrite(document, data, adding=False) if any(results) else None


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


def _remove_if_empty(holder: dict[str, Any], pointer: str) -> None:
    *parents, last = JsonPointer(pointer).parts
    container: Any = holder
    for token in parents:
        container = container.get(token) if isinstance(container, dict) else None
    if isinstance(container, dict) and last in container and container[last] in ({}, []):
        del container[last]
