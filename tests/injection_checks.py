"""What must hold for every injected Pod, whatever produced it."""

from typing import Any

from envoy_validation import validate_injected_proxy
from kubernetes_schema import validate_pod

from injector.core.keys import INJECTED_CONTAINERS

_LISTS = ("initContainers", "containers", "volumes")


def _without_injected(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [item for item in items or [] if item["name"] not in INJECTED_CONTAINERS]


def assert_valid_and_user_objects_intact(pod: dict[str, Any], patched: dict[str, Any]) -> None:
    """The result is a valid Pod whose proxy Envoy accepts, and nothing the user wrote is
    changed, reordered or removed."""
    validate_pod(patched)
    validate_injected_proxy(patched)
    spec, result = pod["spec"], patched["spec"]
    assert _without_injected(result["containers"]) == spec["containers"]
    assert _without_injected(result.get("initContainers")) == spec.get("initContainers", [])
    user_volumes = spec.get("volumes", [])
    assert result.get("volumes", [])[: len(user_volumes)] == user_volumes
    for field in ("labels", "annotations"):
        original = (pod.get("metadata") or {}).get(field) or {}
        assert {k: patched["metadata"][field][k] for k in original} == original
    assert {k: v for k, v in result.items() if k not in _LISTS} == {
        k: v for k, v in spec.items() if k not in _LISTS
    }
