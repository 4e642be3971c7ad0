"""Which operating systems a Pod's scheduling constraints let it run on.

Every node carries its operating system in the labels `kubernetes.io/os` and (deprecated, still
set by the kubelet) `beta.kubernetes.io/os`: `linux` or `windows`. A Pod runs only on a node that
matches both its `nodeSelector` (every label) and, if set, its required node affinity
(`requiredDuringSchedulingIgnoredDuringExecution`): its `nodeSelectorTerms` are ORed, and within
a term the `matchExpressions` and `matchFields` are ANDed; a term without any requirement
matches no node. See the Kubernetes documentation "Assigning Pods to Nodes".

Requirements on other labels and fields could match some node of either system, so only the
operating-system labels decide here.
"""

from collections.abc import Mapping, Sequence
from typing import Any

OS_LABELS = ("kubernetes.io/os", "beta.kubernetes.io/os")


def admits_os(
    os_name: str,
    node_selector: Mapping[str, str] | None,
    node_selector_terms: Sequence[Mapping[str, Any]] | None,
) -> bool:
    """Whether a node running `os_name` can match the nodeSelector and the required node affinity
    terms (None when the Pod sets none); the shapes are checked by the caller."""
    node = {label: os_name for label in OS_LABELS}
    for label, value in (node_selector or {}).items():
        if label in node and node[label] != value:
            return False
    if node_selector_terms is None:
        return True
    return any(_term_admits(term, node) for term in node_selector_terms)


def _term_admits(term: Mapping[str, Any], node: Mapping[str, str]) -> bool:
    expressions = term.get("matchExpressions") or ()
    if not expressions and not term.get("matchFields"):
        return False
    return all(_requirement_admits(requirement, node) for requirement in expressions)


def _requirement_admits(requirement: Mapping[str, Any], node: Mapping[str, str]) -> bool:
    key = requirement.get("key")
    if key not in node:
        return True
    values = requirement.get("values") or ()
    match requirement.get("operator"):
        case "In":
            return node[key] in values
        case "NotIn":
            return node[key] not in values
        case "DoesNotExist":
            return False
        case _:  # Exists; Gt and Lt compare integers, which no OS name is
            return requirement.get("operator") == "Exists"
