"""Finding the Pods and Pod templates in a document, by API group and kind.

A `kind: List` is walked item by item (a null item is skipped, with a note); any other kind
is not a workload and is left alone, including a custom resource that happens to share a
workload's kind in another API group. Objects the injector leaves alone although the webhook
would later see their Pods get a note saying why: a kind it does not know that holds a Pod
template, a workload kind under an API version Kubernetes does not serve it at.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from injector.errors import ManifestError, describe_value
from injector.manifests.documents import Document

POD_FIELDS = ("metadata", "spec")
TEMPLATE = ("spec", "template")

CRON_JOB_TEMPLATE = ("spec", "jobTemplate", "spec", "template")

# The apiVersion each workload kind is served at, and the path from the object to its Pod
# template (() is the Pod itself). Any version of the API group is read.
WORKLOAD_KINDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("v1", "Pod", ()),
    ("v1", "ReplicationController", TEMPLATE),
    ("apps/v1", "Deployment", TEMPLATE),
    ("apps/v1", "StatefulSet", TEMPLATE),
    ("apps/v1", "DaemonSet", TEMPLATE),
    ("apps/v1", "ReplicaSet", TEMPLATE),
    ("batch/v1", "Job", TEMPLATE),
    ("batch/v1", "CronJob", CRON_JOB_TEMPLATE),
    # OpenShift's DeploymentConfig and Argo Rollouts' Rollout create their Pods from
    # spec.template, which the webhook then reviews.
    ("apps.openshift.io/v1", "DeploymentConfig", TEMPLATE),
    ("argoproj.io/v1alpha1", "Rollout", TEMPLATE),
)
TEMPLATE_PATHS = {
    (api_version.rpartition("/")[0], kind): path for api_version, kind, path in WORKLOAD_KINDS
}
_API_VERSIONS = {kind: api_version for api_version, kind, _ in WORKLOAD_KINDS}


@dataclass(frozen=True)
class Workload:
    """An object that is a Pod or holds a Pod template, found in a document."""

    document: Document
    item_path: str  # where the object is in the document: "" or, in a List, "items[2]"
    kind: str
    name: str
    namespace: str | None  # the object's own metadata.namespace
    template_path: str  # "spec.template", or "" when the object is a Pod
    object_keys: tuple[str | int, ...]  # from the document's object to this one: ("items", 2)

    def describe(self) -> str:
        return _describe(self.document, self.item_path, self.kind, self.name)

    def field(self, pod_path: str) -> str:
        """Where a field of the Pod is in the object: metadata is spec.template.metadata."""
        return _join(self.template_path, pod_path)

    @property
    def holder(self) -> dict[str, Any]:
        """The mapping with the Pod's metadata and spec, in the document as read."""
        return self.holder_in(self.document.data)

    def holder_in(self, data: dict[str, Any]) -> dict[str, Any]:
        """The same mapping in a copy of the document's object."""
        holder: Any = self.object_in(data)
        for key in self.template_path.split(".") if self.template_path else ():
            holder = holder[key]
        return holder

    def pod(self, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """The Pod the webhook would be asked about; its metadata and spec are the holder's."""
        holder = self.holder_in(data) if data is not None else self.holder
        pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod"}
        pod.update((key, holder[key]) for key in POD_FIELDS if key in holder)
        return pod

    def object_in(self, data: dict[str, Any]) -> dict[str, Any]:
        """The object (the document's, or a List item) in the document's object `data`."""
        obj: Any = data
        for key in self.object_keys:
            obj = obj[key]
        return obj


def set_pod(holder: dict[str, Any], pod: dict[str, Any]) -> None:
    """Puts a Pod's metadata and spec in a holder, where the old ones were; a new metadata
    goes before the spec, where people look for it."""
    for key in POD_FIELDS:
        if key not in pod:
            holder.pop(key, None)
        elif key in holder or not hasattr(holder, "insert"):
            holder[key] = pod[key]
        else:
            position = list(holder).index("spec") if "spec" in holder else len(holder)
            holder.insert(position, key, pod[key])


@dataclass
class Findings:
    """The workloads of a document, and notes on what was passed over and why."""

    workloads: list[Workload] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class KubeObject:
    """An object in a document: the document's own, or an item of a List."""

    item_path: str
    keys: tuple[str | int, ...]
    data: dict[str, Any]

    @property
    def kind(self) -> Any:
        return self.data.get("kind")

    @property
    def name(self) -> str:
        metadata = self.data.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        return str(metadata.get("name") or metadata.get("generateName") or "(unnamed)")

    @property
    def namespace(self) -> str | None:
        metadata = self.data.get("metadata")
        namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
        return namespace if isinstance(namespace, str) and namespace else None

    def describe(self, document: Document) -> str:
        return _describe(document, self.item_path, str(self.kind), self.name)


def objects(document: Document, notes: list[str] | None = None) -> Iterator[KubeObject]:
    """The objects of a document, Lists walked; a null List item is noted and skipped.

    ManifestError for a List whose items are not a list, or an item that is not a mapping.
    """
    yield from _walk(document, document.data, "", (), notes if notes is not None else [])


def _walk(
    document: Document, obj: dict[str, Any], item_path: str, keys: tuple, notes: list[str]
) -> Iterator[KubeObject]:
    if obj.get("kind") != "List":
        yield KubeObject(item_path, keys, obj)
        return
    items = obj.get("items")
    if items is None:
        return
    if not isinstance(items, list):
        where = document.where(_join(item_path, "items"))
        raise ManifestError(f"{where} must be a list, not {describe_value(items)}")
    for position, item in enumerate(items):
        path = _join(item_path, f"items[{position}]")
        if item is None:
            notes.append(f"{document.where(path)}: skipped: the item is null")
        elif not isinstance(item, dict):
            raise ManifestError(
                f"{document.where(path)} must be a mapping, not {describe_value(item)}"
            )
        else:
            yield from _walk(document, item, path, (*keys, "items", position), notes)


def find_workloads(document: Document) -> Findings:
    """The Pods and Pod templates in a document, and notes on what was passed over.

    ManifestError for a workload without a usable Pod template, or a malformed List.
    """
    findings = Findings()
    for obj in objects(document, findings.notes):
        kind = obj.kind
        api_version = obj.data.get("apiVersion")
        group = api_version.rpartition("/")[0] if isinstance(api_version, str) else None
        template_path = TEMPLATE_PATHS.get((group, kind)) if isinstance(kind, str) else None
        if template_path is None:
            note = _passed_over(obj, group)
            if note is not None:
                findings.notes.append(f"{obj.describe(document)}: not injected: {note}")
            continue
        description = obj.describe(document)
        if (
            kind == "Rollout"
            and _get(obj.data, TEMPLATE) is None
            and _get(obj.data, ("spec", "workloadRef"))
        ):
            findings.notes.append(
                f"{description}: not injected: its Pods come from the workload that "
                "spec.workloadRef names, whose own Pod template is injected there"
            )
            continue
        _holder(obj.data, template_path, description)
        findings.workloads.append(
            Workload(
                document=document,
                item_path=obj.item_path,
                kind=kind,
                name=obj.name,
                namespace=obj.namespace,
                template_path=".".join(template_path),
                object_keys=obj.keys,
            )
        )
    return findings


def _passed_over(obj: KubeObject, group: str | None) -> str | None:
    """Why an object that is not a workload is not injected, when the webhook would later
    see its Pods; None for any other object."""
    kind = obj.kind
    api_version = obj.data.get("apiVersion")
    if isinstance(kind, str) and kind in _API_VERSIONS and _is_kubernetes_group(group):
        served = _API_VERSIONS[kind]
        if not isinstance(api_version, str):
            return f"it has no apiVersion (a {kind}'s is {served})"
        return f"a {kind}'s apiVersion is {served}, not {api_version}"
    for path in (TEMPLATE, CRON_JOB_TEMPLATE):
        template = _get(obj.data, path)
        if isinstance(template, dict) and isinstance(_get(template, ("spec", "containers")), list):
            return (
                f"it holds a Pod template at {'.'.join(path)}, but the injector does not know "
                f"the kind {kind} ({api_version}); the webhook still reviews the Pods it creates"
            )
    return None


def _is_kubernetes_group(group: str | None) -> bool:
    """Kubernetes' own API groups ("" core, apps, batch, extensions, *.k8s.io), not a custom
    resource's (a DNS subdomain of its owner's); None: no apiVersion at all."""
    return group is None or "." not in group or group.endswith(".k8s.io")


def misplaced_settings(workload: Workload, prefix: str) -> list[str]:
    """Warnings for annotations and labels under the prefix written on the metadata of the
    workload itself (or of a CronJob's Job template), where the webhook never sees them."""
    if not workload.template_path:
        return []
    obj = workload.object_in(workload.document.data)
    places = [("", obj.get("metadata"))]
    if workload.kind == "CronJob":
        places.append(("spec.jobTemplate.", _get(obj, ("spec", "jobTemplate", "metadata"))))
    warnings = []
    for place, metadata in places:
        if not isinstance(metadata, dict):
            continue
        for field_name, noun in (("annotations", "annotation"), ("labels", "label")):
            values = metadata.get(field_name)
            keys = (
                [k for k in values if str(k).startswith(f"{prefix}/")]
                if isinstance(values, dict)
                else []
            )
            if not keys:
                continue
            where = f"{place}metadata" if place else f"the {workload.kind}'s own metadata"
            if len(keys) == 1:
                noun_phrase, verb, it, belongs = noun, "is", "it", "it belongs"
            else:
                noun_phrase, verb, it, belongs = f"{noun}s", "are", "them", "they belong"
            warnings.append(
                f"{noun_phrase} {', '.join(keys)} {verb} on {where}, where the injector does "
                f"not read {it}: {belongs} under {workload.template_path}.metadata.{field_name}"
            )
    return warnings


def _holder(obj: dict[str, Any], path: tuple[str, ...], description: str) -> dict[str, Any]:
    holder: Any = obj
    for depth, key in enumerate(path, start=1):
        holder = holder.get(key)
        if not isinstance(holder, dict):
            field_path = ".".join(path[:depth])
            if holder is None:
                raise ManifestError(f"{description}: {field_path} is missing")
            raise ManifestError(
                f"{description}: {field_path} must be a mapping, not {describe_value(holder)}"
            )
    return holder


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _describe(document: Document, item_path: str, kind: str, name: str) -> str:
    return f"{document.where(item_path)}: {kind}/{name}"


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix else path
