"""The injection engine: from a Pod (or an AdmissionReview) to a decision and a patch.

One `Injector` holds a validated configuration and answers for any number of Pods. The
webhook, the CLI and the tests all go through it; nothing here knows of HTTP or the cloud.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from injector.admission import AdmissionReview, InvalidReview, respond
from injector.config import InjectorConfig
from injector.keys import DEFAULT_CONTAINER_ANNOTATION, Keys
from injector.overrides import (
    InvalidAnnotation,
    ProxySettings,
    apply_overrides,
    default_settings,
    unknown_annotations,
)
from injector.patch import Operation, add_to_array, add_to_object
from injector.policy import Decision, Reason, decide
from injector.render import Injection, render

_RENDER_CACHE_SIZE = 256


@dataclass(frozen=True)
class Outcome:
    """What the injector does with one Pod, and why."""

    decision: Literal["injected", "skipped", "denied"]
    reason: Reason
    detail: str
    operations: tuple[Operation, ...] = ()
    warnings: tuple[str, ...] = ()
    overrides: Mapping[str, str] = field(default_factory=dict)


NOT_A_POD_CREATE = Outcome("skipped", Reason.NOT_A_POD_CREATE, "only Pod CREATEs are mutated")


class MalformedPod(ValueError):
    pass


@dataclass(frozen=True)
class _PodView:
    """The parts of a Pod the engine reads, checked for shape; the Pod itself is not copied."""

    metadata: dict[str, Any] | None
    labels: dict[str, str] | None
    annotations: dict[str, str] | None
    containers: list[dict[str, Any]]
    init_containers: list[dict[str, Any]] | None
    volumes: list[dict[str, Any]] | None
    host_network: bool

    def container_names(self) -> list[str]:
        return [c["name"] for c in (*self.containers, *(self.init_containers or ()))]


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


def _inspect(pod: Any) -> _PodView:
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
    return _PodView(
        metadata=metadata,
        labels=labels,
        annotations=annotations,
        containers=containers,
        init_containers=init_containers,
        volumes=volumes,
        host_network=spec.get("hostNetwork") is True,
    )


class Injector:
    def __init__(self, config: InjectorConfig):
        self.config = config
        self.digest = config.digest()
        self.keys = Keys(config.annotation_prefix)
        self._default_settings = default_settings(config)
        self._renderings: dict[ProxySettings, Injection] = {}
        ports = config.proxy.ports
        self._proxy_ports = {
            ports.outbound: "outbound capture",
            ports.inbound: "inbound capture",
            ports.admin: "admin",
            ports.health: "health",
            ports.metrics: "metrics",
        }

    def review(self, review: AdmissionReview) -> tuple[bytes, Outcome]:
        """The AdmissionReview response body for a request, and the outcome behind it."""
        request = review.request
        if not request.is_pod_create:
            return respond(review), NOT_A_POD_CREATE
        if not isinstance(request.object, dict):
            raise InvalidReview("request.object must be the Pod for a CREATE of pods")
        outcome = self.evaluate(request.object, request.namespace)
        if outcome.decision == "denied":
            body = respond(
                review,
                allowed=False,
                warnings=outcome.warnings,
                status_code=400,
                status_message=outcome.detail,
            )
        else:
            body = respond(review, patch=outcome.operations, warnings=outcome.warnings)
        return body, outcome

    def evaluate(self, pod: Any, namespace: str) -> Outcome:
        """Decides for one Pod and, when it is injected, builds the patch operations."""
        try:
            view = _inspect(pod)
        except MalformedPod as error:
            return Outcome(
                "skipped",
                Reason.MALFORMED_POD,
                str(error),
                warnings=(f"the proxy was not injected: the Pod is malformed ({error})",),
            )
        labels = view.labels or {}
        annotations = view.annotations or {}
        try:
            decision = decide(
                self.config,
                self.keys,
                namespace,
                view.host_network,
                labels,
                annotations,
                view.container_names(),
            )
            if not decision.inject:
                return Outcome("skipped", decision.reason, decision.detail)
            settings, applied = apply_overrides(self._default_settings, self.config, annotations)
        except InvalidAnnotation as error:
            return Outcome("denied", Reason.INVALID_ANNOTATION, str(error))
        warnings = tuple(
            f"annotation {key} is not known to the injector and was ignored"
            for key in unknown_annotations(self.config, annotations)
        )
        injection = self._rendering(settings)
        conflict = self._port_conflict(view) or self._name_conflict(view, injection)
        if conflict is not None:
            message = f"the proxy was not injected: {conflict.detail}"
            return Outcome("skipped", conflict.reason, conflict.detail, (), (*warnings, message))
        operations = self._operations(view, injection)
        return Outcome("injected", Reason.INJECTED, decision.detail, operations, warnings, applied)

    def _rendering(self, settings: ProxySettings) -> Injection:
        injection = self._renderings.get(settings)
        if injection is None:
            if len(self._renderings) >= _RENDER_CACHE_SIZE:
                self._renderings.clear()
            injection = self._renderings[settings] = render(self.config, settings)
        return injection

    def _port_conflict(self, view: _PodView) -> Decision | None:
        for container in (*(view.init_containers or ()), *view.containers):
            ports = container.get("ports")
            for port in ports if isinstance(ports, list) else ():
                number = port.get("containerPort") if isinstance(port, dict) else None
                role = self._proxy_ports.get(number) if isinstance(number, int) else None
                if role is not None:
                    return Decision(
                        False,
                        Reason.PORT_CONFLICT,
                        f"container {container['name']} uses port {number}, "
                        f"which the proxy needs for {role}",
                    )
        return None

    def _name_conflict(self, view: _PodView, injection: Injection) -> Decision | None:
        taken = {
            "container": set(view.container_names()),
            "volume": {v["name"] for v in view.volumes or ()},
            "annotation": set(view.annotations or ()),
            "label": set(view.labels or ()),
        }
        ours = {
            "container": (*injection.init_container_names, *injection.container_names),
            "volume": injection.volume_names,
            "annotation": tuple(injection.annotations),
            "label": tuple(injection.labels),
        }
        for kind, names in ours.items():
            for name in names:
                if name in taken[kind]:
                    return Decision(
                        False,
                        Reason.NAME_CONFLICT,
                        f"the Pod already has the {kind} {name}, which the injector adds",
                    )
        return None

    def _operations(self, view: _PodView, injection: Injection) -> tuple[Operation, ...]:
        ops: list[Operation] = []
        add_to_array(
            ops,
            "/spec/initContainers",
            view.init_containers,
            leading=injection.leading_init_containers,
            trailing=injection.trailing_init_containers,
        )
        add_to_array(
            ops,
            "/spec/containers",
            view.containers,
            leading=injection.leading_containers,
            trailing=injection.trailing_containers,
        )
        add_to_array(ops, "/spec/volumes", view.volumes, trailing=injection.volumes)
        annotations = dict(injection.annotations)
        if DEFAULT_CONTAINER_ANNOTATION not in (view.annotations or {}):
            annotations[DEFAULT_CONTAINER_ANNOTATION] = view.containers[0]["name"]
        created = [
            pointer
            for pointer, existing, adds in (
                ("/spec/initContainers", view.init_containers, injection.init_container_names),
                ("/spec/volumes", view.volumes, injection.volume_names),
                ("/metadata", view.metadata, True),
                ("/metadata/annotations", view.annotations, True),
                ("/metadata/labels", view.labels, injection.labels),
            )
            if existing is None and adds
        ]
        annotations[self.keys.status] = self._status(injection, annotations, created)
        if view.metadata is None:
            ops.append(
                {
                    "op": "add",
                    "path": "/metadata",
                    "value": {"annotations": annotations, "labels": dict(injection.labels)},
                }
            )
        else:
            add_to_object(ops, "/metadata/annotations", view.annotations, annotations)
            add_to_object(ops, "/metadata/labels", view.labels, injection.labels)
        return tuple(ops)

    def _status(self, injection: Injection, annotations: dict[str, str], created: list[str]) -> str:
        """Exactly what was injected, so that it can be recognised and removed.

        `created` lists the JSON Pointers of the arrays and objects the patch created, which
        removal deletes again once they are empty.
        """
        return orjson.dumps(
            {
                "config": self.digest,
                "initContainers": injection.init_container_names,
                "containers": injection.container_names,
                "volumes": injection.volume_names,
                "annotations": [*annotations, self.keys.status],
                "labels": list(injection.labels),
                "created": created,
            }
        ).decode()
