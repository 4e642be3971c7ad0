"""The injection engine: from a Pod to a decision, its reason, and the patch that injects it.

One `Injector` holds a validated configuration and answers for any number of Pods. The
webhook and the manifest commands both ask it; it knows nothing of HTTP, AdmissionReviews or
files, and returns its answer as data (an `Outcome`), never as bytes.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from injector.core.config import InjectorConfig
from injector.core.keys import DEFAULT_CONTAINER_ANNOTATION, INIT_CONTAINER, PROXY_CONTAINER, Keys
from injector.core.meshes import other_mesh
from injector.core.pod import PodView, inspect_pod
from injector.core.policy import Decision, Reason, decide
from injector.core.render import Injection, render, with_container_resources
from injector.core.settings import (
    other_kind_annotations,
    override_annotations,
    pod_config,
    unknown_annotations,
)
from injector.core.status import InjectionStatus
from injector.errors import InvalidAnnotation, MalformedPod
from injector.kube.patch import Operation, add_to_array, add_to_object
from injector.kube.pod_security import ENFORCE_LABEL, capabilities_beyond_baseline
from injector.kube.qos import (
    is_guaranteed,
    missing_limits,
    pod_level_qos_resources,
    requests_at_limits,
    without_resources,
)

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
    # What to know about every Pod injected this way, and what to do about it: shown by
    # `explain`, not sent with each review.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Fitting:
    """How the injected containers' resources fit a Pod's QoS class (see `_fitting`)."""

    requests_at_limits: bool = False  # raised to their limits, for a Guaranteed Pod
    shared: tuple[str, ...] = ()  # left out: the Pod sets them at the pod level


@dataclass(frozen=True)
class _Rendering:
    """What is added for one set of overrides and one fitting, and what follows from it."""

    injection: Injection
    classic_proxy: bool  # the proxy is an app container, not a native sidecar
    qos_warning: str | None  # why a Guaranteed Pod cannot stay Guaranteed, for that fitting
    notes: tuple[str, ...]


# Where a missing limit of an injected container is set, by container and resource.
_LIMIT_SOURCES = {
    PROXY_CONTAINER: "proxy.resources.limits.{resource} in the configuration, or the annotation "
    "{prefix}/proxy-{resource}-limit",
    INIT_CONTAINER: "init.resources.limits.{resource} in the configuration",
}


class Injector:
    """The engine for one configuration."""

    def __init__(self, config: InjectorConfig):
        self.config = config
        self.digest = config.digest()
        self.keys = Keys(config.annotation_prefix)
        # Renderings by the Pod's override annotations and the fitting of resources to its QoS
        # class: most Pods share a few.
        self._renderings: dict[tuple[_Fitting, tuple[tuple[str, str], ...]], _Rendering] = {}
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
            return _malformed(str(error))
        labels = view.labels or {}
        annotations = view.annotations or {}
        overrides = override_annotations(self.config, annotations)
        try:
            decision = decide(self.config, self.keys, namespace, view)
            if not decision.inject:
                return Outcome("skipped", decision.reason, decision.detail)
            # Another mesh's proxy rules out ours whatever our annotations say: checked before
            # they are read, so that an invalid one cannot deny a Pod that gets nothing.
            mesh = other_mesh(view.container_names(), annotations, labels)
            if mesh is not None:
                return _other_mesh(mesh.describe())
            try:
                guaranteed = is_guaranteed(view.spec)
            except ValueError as error:
                return _malformed(str(error))
            rendering = self._rendering(overrides, _fitting(view.spec, guaranteed))
        except InvalidAnnotation as error:
            ignored = self._ignored_annotation_warnings(annotations)
            return Outcome("denied", Reason.INVALID_ANNOTATION, str(error), warnings=ignored)
        injection = rendering.injection
        warnings = self._ignored_annotation_warnings(annotations)
        if rendering.qos_warning is not None:
            warnings += (rendering.qos_warning,)
        if rendering.classic_proxy and view.restart_policy in ("Never", "OnFailure"):
            warnings += (_run_to_completion_warning(self.keys, view.restart_policy),)
        conflict = self._port_conflict(view) or self._name_conflict(view, injection)
        if conflict is not None:
            message = f"the proxy was not injected: {conflict.detail}"
            return Outcome("skipped", conflict.reason, conflict.detail, (), (*warnings, message))
        operations = self._operations(view, injection)
        warnings = (*warnings, *injection.warnings)
        return Outcome(
            "injected",
            Reason.INJECTED,
            decision.detail,
            operations,
            warnings,
            overrides,
            rendering.notes,
        )

    def _ignored_annotation_warnings(self, annotations: dict[str, str]) -> tuple[str, ...]:
        unknown = tuple(
            f"annotation {key} is not known to the injector and was ignored"
            for key in unknown_annotations(self.config, annotations)
        )
        other_kind = tuple(
            f"annotation {key} was ignored: it sets the proxy of kind {kind}, and this "
            f"injector's proxy is of kind {self.config.proxy.kind}, which owns its configuration"
            for key, kind in other_kind_annotations(self.config, annotations).items()
        )
        return unknown + other_kind

    def _rendering(self, overrides: dict[str, str], fitting: _Fitting) -> _Rendering:
        key = (fitting, tuple(overrides.items()))
        rendering = self._renderings.get(key)
        if rendering is None:
            if len(self._renderings) >= _RENDER_CACHE_SIZE:
                self._renderings.clear()
            injection = render(pod_config(self.config, overrides))
            if fitting.requests_at_limits:
                injection = with_container_resources(injection, requests_at_limits)
            if fitting.shared:
                injection = with_container_resources(
                    injection, lambda resources: without_resources(resources, fitting.shared)
                )
            rendering = self._renderings[key] = _Rendering(
                injection,
                classic_proxy=PROXY_CONTAINER in injection.container_names,
                qos_warning=(
                    _qos_warning(self.keys, injection) if fitting.requests_at_limits else None
                ),
                notes=_pod_security_notes(self.keys, injection),
            )
        return rendering

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


def _fitting(spec: dict[str, Any], guaranteed: bool) -> _Fitting:
    """How the injected containers' resources fit a Pod, so that its QoS class stays as it is.

    A Pod with pod-level resources has the class they give it: the injected containers leave
    out the resources it sets at the pod level and share them, as the Pod's own containers may
    (Kubernetes rejects a container limit above the Pod's, and default pod-level requests add
    up the containers'). Otherwise a Guaranteed Pod stays Guaranteed only if every container
    requests what it limits.
    """
    shared = pod_level_qos_resources(spec)
    if shared:
        return _Fitting(shared=shared)
    return _Fitting(requests_at_limits=guaranteed)


def _other_mesh(detail: str) -> Outcome:
    warning = (
        f"the proxy was not injected: {detail}; two meshes' proxies in one Pod redirect each "
        "other's traffic"
    )
    return Outcome("skipped", Reason.OTHER_MESH, detail, warnings=(warning,))


def _malformed(detail: str) -> Outcome:
    return Outcome(
        "skipped",
        Reason.MALFORMED_POD,
        detail,
        warnings=(f"the proxy was not injected: the Pod is malformed ({detail})",),
    )


def _qos_warning(keys: Keys, injection: Injection) -> str | None:
    """Why a Guaranteed Pod is Burstable once injected, if it is: an injected container without
    a cpu or memory limit cannot request what it limits (see `injector.kube.qos`)."""
    missing = [
        f"{container['name']} has no {resource} limit to set its request to (set "
        + _LIMIT_SOURCES.get(container["name"], "its limit").format(
            resource=resource, prefix=keys.prefix
        )
        + ")"
        for container in injection.containers
        for resource in missing_limits(container.get("resources") or {})
    ]
    if not missing:
        return None
    return "the Pod's QoS class is Guaranteed, but once injected it is Burstable: " + "; ".join(
        missing
    )


def _run_to_completion_warning(keys: Keys, restart_policy: str) -> str:
    return (
        f"the proxy runs as a classic container in a Pod with restartPolicy: {restart_policy}, "
        "so the Pod never completes: the proxy keeps running after the application exits; "
        f'a native sidecar ({keys.prefix}/native-sidecar: "true", Kubernetes 1.29 or later) '
        "does not have this problem, as it stops once the application containers have exited"
    )


def _pod_security_notes(keys: Keys, injection: Injection) -> tuple[str, ...]:
    """What the Pod Security Standards say about the injected containers, and what to do."""
    adding: dict[tuple[str, ...], list[str]] = {}  # capabilities -> the containers adding them
    for container in injection.containers:
        if capabilities := capabilities_beyond_baseline(container):
            adding.setdefault(tuple(capabilities), []).append(container["name"])
    if not adding:
        return ()
    added = [
        f"{' and '.join(names)} add{'s' if len(names) == 1 else ''} {' and '.join(capabilities)}"
        for capabilities, names in adding.items()
    ]
    return (
        f"{', '.join(added)}, which the Pod Security Standards baseline and restricted both "
        f"forbid: in a namespace that enforces either ({ENFORCE_LABEL}), the API server rejects "
        "the injected Pod. Inject only where the namespace enforces privileged (or is exempt "
        "in the PodSecurity admission configuration), or opt the Pod out with the label "
        f'{keys.inject}: "false"',
    )
