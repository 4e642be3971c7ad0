"""The injection engine: from a Pod to a decision, its reason, and the patch that injects it.

One `Injector` holds a validated configuration and answers for any number of Pods. The
webhook and the manifest commands both ask it; it knows nothing of HTTP, AdmissionReviews or
files, and returns its answer as data (an `Outcome`), never as bytes.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from injector.core.config import InjectorConfig
from injector.core.keys import DEFAULT_CONTAINER_ANNOTATION, Keys
from injector.core.pod import PodView, inspect_pod
from injector.core.policy import Decision, Reason, decide
from injector.core.render import Injection, render
from injector.core.settings import override_annotations, pod_config, unknown_annotations
from injector.core.status import InjectionStatus
from injector.errors import InvalidAnnotation, MalformedPod
from injector.kube.patch import Operation, add_to_array, add_to_object

_RENDER_CACHE_SIZE = 256


@dataclass(frozen=True)
class Outcome:
    """What the injector does with one Pod, and why."""

    decision: Literal["injected", "skipped", "denied"]
    reason: Reason
    detail: str  # what decided, in words
    operations: tuple[Operation, ...] = ()  # RFC 6902 JSON Patch, add operations only
    warnings: tuple[str, ...] = ()  # for the requester (kubectl shows them)
    overrides: Mapping[str, str] = field(default_factory=dict)  # the annotations applied


class Injector:
    """The engine for one configuration."""

    def __init__(self, config: InjectorConfig):
        self.config = config
        self.digest = config.digest()
        self.keys = Keys(config.annotation_prefix)
        # Renderings by the Pod's override annotations: most Pods share a few sets.
        self._renderings: dict[tuple[tuple[str, str], ...], Injection] = {}
        ports = config.proxy.ports
        self._proxy_ports = {
            ports.outbound: "outbound capture",
            ports.inbound: "inbound capture",
            ports.admin: "admin",
            ports.health: "health",
            ports.metrics: "metrics",
        }

    def evaluate(self, pod: Any, namespace: str) -> Outcome:
        """Decides for one Pod (its JSON) created in `namespace`, with the patch if injected."""
        try:
            view = inspect_pod(pod)
        except MalformedPod as error:
            return Outcome(
                "skipped",
                Reason.MALFORMED_POD,
                str(error),
                warnings=(f"the proxy was not injected: the Pod is malformed ({error})",),
            )
        labels = view.labels or {}
        annotations = view.annotations or {}
        overrides = override_annotations(self.config, annotations)
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
            injection = self._rendering(overrides)
        except InvalidAnnotation as error:
            return Outcome("denied", Reason.INVALID_ANNOTATION, str(error))
        warnings = tuple(
            f"annotation {key} is not known to the injector and was ignored"
            for key in unknown_annotations(self.config, annotations)
        )
        conflict = self._port_conflict(view) or self._name_conflict(view, injection)
        if conflict is not None:
            message = f"the proxy was not injected: {conflict.detail}"
            return Outcome("skipped", conflict.reason, conflict.detail, (), (*warnings, message))
        operations = self._operations(view, injection)
        detail = decision.detail
        warnings = (*warnings, *injection.warnings)
        return Outcome("injected", Reason.INJECTED, detail, operations, warnings, overrides)

    def _rendering(self, overrides: dict[str, str]) -> Injection:
        key = tuple(overrides.items())
        injection = self._renderings.get(key)
        if injection is None:
            if len(self._renderings) >= _RENDER_CACHE_SIZE:
                self._renderings.clear()
            config = pod_config(self.config, overrides)
            injection = self._renderings[key] = render(config)
        return injection

    def _port_conflict(self, view: PodView) -> Decision | None:
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

    def _name_conflict(self, view: PodView, injection: Injection) -> Decision | None:
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

    def _operations(self, view: PodView, injection: Injection) -> tuple[Operation, ...]:
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
        status = InjectionStatus(
            config=self.digest,
            init_containers=tuple(injection.init_container_names),
            containers=tuple(injection.container_names),
            volumes=tuple(injection.volume_names),
            annotations=(*annotations, self.keys.status),
            labels=tuple(injection.labels),
            created=tuple(created),
        )
        annotations[self.keys.status] = status.to_annotation()
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
