"""Finding the Pods and Pod templates in a document, by API group and kind.

A `kind: List` is walked item by item; any other kind is not a workload and is left alone,
including a custom resource that happens to share a workload's kind in another API group.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from injector.errors import ManifestError, describe_value
from injector.manifests.documents import Document

POD_FIELDS = ("metadata", "spec")

# (API group, kind) -> the path from the object to its Pod template; () is the Pod itself.
TEMPLATE_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): (),
    ("", "ReplicationController"): ("spec", "template"),
    ("apps", "Deployment"): ("spec", "template"),
    ("apps", "StatefulSet"): ("spec", "template"),
    ("apps", "DaemonSet"): ("spec", "template"),
    ("apps", "ReplicaSet"): ("spec", "template"),
    ("batch", "Job"): ("spec", "template"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}


@dataclass(frozen=True)
class Workload:
    """An object that is a Pod or holds a Pod template, found in a document."""

    document: Document
    item_path: str  # where the object is in the document: "" or, in a List, "items[2]"
    kind: str
    name: str
    namespace: str | None  # the object's own metadata.namespace
    template_path: str  # "spec.template", or "" when the object is a Pod
    holder: dict[str, Any]  # the mapping with the Pod's metadata and spec: edited in place

    def describe(self) -> str:
        return _describe(self.document, self.item_path, self.kind, self.name)

    def field(self, pod_path: str) -> str:
        """Where a field of the Pod is in the object: metadata is spec.template.metadata."""
        return _join(self.template_path, pod_path)

    def pod(self) -> dict[str, Any]:
        """The Pod the webhook would be asked about; its metadata and spec are the holder's."""
        pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod"}
        pod.update((key, self.holder[key]) for key in POD_FIELDS if key in self.holder)
        return pod

    def replace_pod(self, pod: dict[str, Any]) -> None:
        """Puts a changed Pod's metadata and spec in the holder, where the old ones were."""
        for key in POD_FIELDS:
            if key not in pod:
                self.holder.pop(key, None)
            elif key in self.holder or not hasattr(self.holder, "insert"):
                self.holder[key] = pod[key]
            else:  # a new metadata goes before the spec, where people look for it
                position = list(self.holder).index("spec") if "spec" in self.holder else 0
                self.holder.insert(position, key, pod[key])


def find_workloads(document: Document) -> list[Workload]:
    return list(_walk(document, document.data, ""))


def _walk(document: Document, obj: dict[str, Any], item_path: str) -> Iterator[Workload]:
    kind = obj.get("kind")
    if kind == "List":
        items = obj.get("items")
        if items is None:
            return
        if not isinstance(items, list):
            where = document.where(_join(item_path, "items"))
            raise ManifestError(f"{where} must be a list, not {describe_value(items)}")
        for position, item in enumerate(items):
            path = _join(item_path, f"items[{position}]")
            if not isinstance(item, dict):
                raise ManifestError(
                    f"{document.where(path)} must be a mapping, not {describe_value(item)}"
                )
            yield from _walk(document, item, path)
        return
    api_version = obj.get("apiVersion")
    group = api_version.rpartition("/")[0] if isinstance(api_version, str) else None
    template_path = TEMPLATE_PATHS.get((group, kind)) if isinstance(kind, str) else None
    if template_path is None:
        return
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    name = str(metadata.get("name") or metadata.get("generateName") or "(unnamed)")
    namespace = metadata.get("namespace")
    yield Workload(
        document=document,
        item_path=item_path,
        kind=kind,
        name=name,
        namespace=namespace if isinstance(namespace, str) and namespace else None,
        template_path=".".join(template_path),
        holder=_holder(obj, template_path, _describe(document, item_path, kind, name)),
    )


def _holder(obj: dict[str, Any], path: tuple[str, ...], description: str) -> dict[str, Any]:
    holder: Any = obj
    for depth, key in enumerate(path, start=1):
        holder = holder.get(key)
        if not isinstance(holder, dict):
            field = ".".join(path[:depth])
            if holder is None:
                raise ManifestError(f"{description}: {field} is missing")
            raise ManifestError(
                f"{description}: {field} must be a mapping, not {describe_value(holder)}"
            )
    return holder


def _describe(document: Document, item_path: str, kind: str, name: str) -> str:
    return f"{document.where(item_path)}: {kind}/{name}"


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix else path
