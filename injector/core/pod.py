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
    spec: dict[str, Any]  # the whole spec, for rules that read more (the QoS class)
    restart_policy: str | None  # spec.restartPolicy as written (the API server's default: Always)
    os_name: str | None  # spec.os.name
    node_selector: dict[str, str] | None
    node_selector_terms: list[dict[str, Any]] | None  # the required node affinity's terms

    def container_names(self) -> list[str]:
        """The names of its containers and init containers (one namespace in Kubernetes)."""
        return [c["name"] for c in (*self.containers, *(self.init_containers or ()))]


def inspect_pod(pod: Any) -> PodView:
    """The view of a Pod; MalformedPod naming the first field of the wrong shape."""
    if not isinstance(pod, dict):
        raise MalformedPod("the Pod must be a JSON object")
    metadata = _member(pod, "metadata", dict, "metadata")
    spec = _member(pod, "spec", dict, "spec")
    if spec is None:
        raise MalformedPod("spec.containers must list at least one container")
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
    node_selector = _member(spec, "nodeSelector", dict, "spec.nodeSelector")
    _string_map(node_selector, "spec.nodeSelector")
    return PodView(
        metadata=metadata,
        labels=labels,
        annotations=annotations,
        containers=containers,
        init_containers=init_containers,
        volumes=volumes,
        host_network=spec.get("hostNetwork") is True,
        spec=spec,
        restart_policy=_string(spec, "restartPolicy", "spec.restartPolicy"),
        os_name=_string(_member(spec, "os", dict, "spec.os"), "name", "spec.os.name"),
        node_selector=node_selector,
        node_selector_terms=_node_selector_terms(spec),
    )


def _node_selector_terms(spec: dict[str, Any]) -> list[dict[str, Any]] | None:
    """spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms,
    checked for shape; None when the Pod has no required node affinity."""
    where = "spec.affinity"
    affinity = _member(spec, "affinity", dict, where)
    node_affinity = _member(affinity, "nodeAffinity", dict, f"{where}.nodeAffinity")
    where += ".nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    required = _member(node_affinity, "requiredDuringSchedulingIgnoredDuringExecution", dict, where)
    if required is None:
        return None
    terms = _member(required, "nodeSelectorTerms", list, f"{where}.nodeSelectorTerms") or []
    for index, term in enumerate(terms):
        term_where = f"{where}.nodeSelectorTerms[{index}]"
        if not isinstance(term, dict):
            raise MalformedPod(f"{term_where} must be an object")
        for field in ("matchExpressions", "matchFields"):
            for position, requirement in enumerate(
                _member(term, field, list, f"{term_where}.{field}") or ()
            ):
                requirement_where = f"{term_where}.{field}[{position}]"
                if not isinstance(requirement, dict):
                    raise MalformedPod(f"{requirement_where} must be an object")
                _string(requirement, "key", f"{requirement_where}.key")
                _string(requirement, "operator", f"{requirement_where}.operator")
                values = _member(requirement, "values", list, f"{requirement_where}.values")
                if values is not None and not all(isinstance(v, str) for v in values):
                    raise MalformedPod(f"{requirement_where}.values must list strings")
    return terms


def _member(parent: dict[str, Any] | None, name: str, kind: type, where: str) -> Any:
    value = None if parent is None else parent.get(name)
    if value is not None and not isinstance(value, kind):
        raise MalformedPod(f"{where} must be {'an object' if kind is dict else 'a list'}")
    return value


def _string(parent: dict[str, Any] | None, name: str, where: str) -> str | None:
    value = None if parent is None else parent.get(name)
    if value is not None and not isinstance(value, str):
        raise MalformedPod(f"{where} must be a string")
    return value


def _string_map(value: dict[str, Any] | None, where: str) -> None:
    if value is not None and not all(isinstance(v, str) for v in value.values()):
        raise MalformedPod(f"{where} values must be strings")


def _named_items(items: list[Any] | None, where: str) -> None:
    for index, item in enumerate(items or ()):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise MalformedPod(f"{where}[{index}] must be an object with a name")
