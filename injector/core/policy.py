"""Whether a Pod joins the mesh, and why: each decision carries a machine-readable reason."""

from dataclasses import dataclass
from enum import StrEnum

from injector.core.config import InjectorConfig
from injector.core.keys import Keys
from injector.core.pod import PodView
from injector.core.status import is_injected
from injector.errors import InvalidAnnotation
from injector.kube.scheduling import admits_os

# The annotation the kubelet puts on the API server's mirror of a static Pod (the value is the
# static Pod's hash); see the Kubernetes documentation "Create static Pods".
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


class Reason(StrEnum):
    INJECTED = "injected"
    NOT_A_POD_CREATE = "not-a-pod-create"
    EXCLUDED_NAMESPACE = "excluded-namespace"
    MIRROR_POD = "mirror-pod"
    WINDOWS_POD = "windows-pod"
    HOST_NETWORK = "host-network"
    ALREADY_INJECTED = "already-injected"
    OTHER_MESH = "other-mesh"
    OPTED_OUT = "opted-out"
    NEVER_INJECT_SELECTOR = "never-inject-selector"
    NOT_OPTED_IN = "not-opted-in"
    PORT_CONFLICT = "port-conflict"
    NAME_CONFLICT = "name-conflict"
    MALFORMED_POD = "malformed-pod"
    INVALID_ANNOTATION = "invalid-annotation"
    NO_CONFIG = "no-config"
    INTERNAL_ERROR = "internal-error"


@dataclass(frozen=True)
class Decision:
    inject: bool
    reason: Reason
    detail: str  # what decided, in words: which label, annotation, selector or rule


def _skip(reason: Reason, detail: str) -> Decision:
    return Decision(False, reason, detail)


def _inject(detail: str) -> Decision:
    return Decision(True, Reason.INJECTED, detail)


def _explicit_choice(
    keys: Keys, labels: dict[str, str], annotations: dict[str, str]
) -> tuple[bool, str] | None:
    """The Pod's own inject=true/false, the label winning over the annotation."""
    for kind, source in (("label", labels), ("annotation", annotations)):
        value = source.get(keys.inject)
        if value is None:
            continue
        if value not in ("true", "false"):
            raise InvalidAnnotation(keys.inject, value, "expected true or false", kind)
        return value == "true", f"{kind} {keys.inject}={value}"
    return None


def decide(config: InjectorConfig, keys: Keys, namespace: str, view: PodView) -> Decision:
    """Decides in a fixed order; the first rule that applies gives the reason.

    What the Pod is (a mirror Pod, a Windows Pod, on the node's network, already injected) comes
    before what it asks for, so that such a Pod is skipped whatever its labels and annotations
    say. Raises InvalidAnnotation when the Pod's own inject label or annotation is not
    true/false.
    """
    labels = view.labels or {}
    annotations = view.annotations or {}
    if namespace in config.excluded_namespaces:
        return _skip(Reason.EXCLUDED_NAMESPACE, f"namespace {namespace} is excluded")
    if MIRROR_ANNOTATION in annotations:
        return _skip(
            Reason.MIRROR_POD,
            f"the Pod is the API server's mirror of a static Pod (annotation {MIRROR_ANNOTATION}):"
            " the kubelet runs the static Pod as its file defines it, never what is added here",
        )
    windows = _windows(view)
    if windows is not None:
        return _skip(Reason.WINDOWS_POD, windows)
    if view.host_network:
        return _skip(Reason.HOST_NETWORK, "the Pod uses the node's network (hostNetwork: true)")
    if is_injected(keys, annotations, view.container_names()):
        return _skip(Reason.ALREADY_INJECTED, "the Pod already has the proxy")
    choice = _explicit_choice(keys, labels, annotations)
    if choice is not None:
        wanted, source = choice
        return _inject(source) if wanted else _skip(Reason.OPTED_OUT, source)
    for index, selector in enumerate(config.never_inject_selectors):
        if selector.matches(labels):
            return _skip(Reason.NEVER_INJECT_SELECTOR, f"neverInjectSelectors[{index}] matches")
    for index, selector in enumerate(config.always_inject_selectors):
        if selector.matches(labels):
            return _inject(f"alwaysInjectSelectors[{index}] matches")
    if config.default_policy == "disabled":
        return _skip(
            Reason.NOT_OPTED_IN, "the default policy is disabled and the Pod did not opt in"
        )
    return _inject("the default policy is enabled")


def _windows(view: PodView) -> str | None:
    """Why the Pod runs on Windows, or None: the injected containers are Linux containers."""
    if view.os_name == "windows":
        return "the Pod is a Windows Pod (spec.os.name: windows); the proxy is Linux-only"
    if not view.node_selector and view.node_selector_terms is None:
        return None
    if admits_os("linux", view.node_selector, view.node_selector_terms):
        return None
    if not admits_os("windows", view.node_selector, view.node_selector_terms):
        return None  # it matches no node at all: not a Windows Pod
    where = (
        "nodeSelector"
        if not admits_os("linux", view.node_selector, None)
        else "required node affinity"
    )
    return f"the Pod can only run on Windows nodes (its {where}); the proxy is Linux-only"
