"""The parts of a Pod the engine reads, checked for shape before anything is decided.

The API server sends any JSON as the object under review, and manifests can hold anything: a
Pod whose fields have the wrong types is reported as malformed, never allowed to crash a review.
"""

from dataclasses import dataclass
from typing import Any

from injector.errors import MalformedPod


@dataclass(frozen=True)
class PodView:
    """A checked view of a Pod (core/v1); the Pod itself is not copied."""

    metadata: dict[str, Any] | None
    labels: dict[str, str] | None
    annotations: dict[str, str] | None
    containers: list[dict[str, Any]]
    init_containers: list[dict[str, Any]] | None
    volumes: list[dict[str, Any]] | None
    host_network: bool

    def container_names(self) -> list[str]:
        """The names of its containers and init containers (one namespace in Kubernetes)."""
        return [c["name"] for c in (*self.containers, *(self.init_containers or ()))]


def inspect_pod(pod: Any) -> PodView:
    """The view of a Pod; MalformedPod naming the first field of the wrong shape."""
    if not isinstance(pod, dict):
        raise MalformedPod("the Pod must be a JSON object")
    metadata = _member(pod, "metadata", dict, "metadata")
    spec = _member(pod, "spec", dict, "spec")
    containers = _member(spec, "containers", list, "spec.containers")
    if not containers:
        raise MalformedPod("spec.containers must list at least one container")
    init_containers = _member(spec, "initContainers", list, "spec.initContainers")
    volumes = _member(spec, "volumes", list, "spec.volumes")
    _named_items(containers, "spec.containers")
    _named_items(init_containers, "spec.initContainers")
    _named_items(volumes, "spec.volumes")
    labels = _member(metadata, "labels", dict, "metadata.labels")
    annotations = _member(metadata, "annotations", dict, "metadata.annotations")
    _string_map(labels, "metadata.labels")
    _string_map(annotations, "metadata.annotations")
    return PodView(
        metadata=metadata,
        labels=labels,
        annotations=annotations,
        containers=containers,
        init_containers=init_containers,
        volumes=volumes,
        host_network=spec.get("hostNetwork") is True,
    )


def _member(parent: dict[str, Any] | None, name: str, kind: type, where: str) -> Any:
    value = None if parent is None else parent.get(name)
    if value is not None and not isinstance(value, kind):
        raise MalformedPod(f"{where} must be {'an object' if kind is dict else 'a list'}")
    return value


def _string_map(value: dict[str, Any] | None, where: str) -> None:
    if value is not None and not all(isinstance(v, str) for v in value.values()):
        raise MalformedPod(f"{where} values must be strings")


def _named_items(items: list[Any] | None, where: str) -> None:
    for index, item in enumerate(items or ()):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise MalformedPod(f"{where}[{index}] must be an object with a name")
