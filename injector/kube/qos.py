"""A Pod's quality-of-service class (`status.qosClass`), computed as Kubernetes computes it.

The rules are Kubernetes' `ComputePodQOS` (pkg/apis/core/helper/qos/qos.go) with pod-level
resources (`spec.resources`, feature PodLevelResources, on by default since 1.34), applied to
the Pod as the API server stores it after `SetDefaults_Pod` (pkg/apis/core/v1/defaults.go):

- a container (or init container) that sets a limit but no request for a resource gets a
  request equal to its limit;
- when the Pod sets pod-level limits, a pod-level request it leaves out becomes the aggregate of
  its containers' requests (sidecars counted as running beside the others, other init
  containers one at a time) if any container requests that resource, else the pod-level limit.

Then only `cpu` and `memory` count, and only quantities above zero:

- with pod-level resources, the class is decided by them alone: Guaranteed when its limits set
  both cpu and memory and its requests equal its limits;
- otherwise every container and init container must set both a cpu and a memory limit, and the
  containers' requests, summed per resource, must equal their limits, summed;
- BestEffort when nothing is requested or limited at all; Burstable in every other case.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from injector.kube.quantity import parse_quantity

QosClass = Literal["Guaranteed", "Burstable", "BestEffort"]
GUARANTEED: QosClass = "Guaranteed"
BURSTABLE: QosClass = "Burstable"
BEST_EFFORT: QosClass = "BestEffort"

QOS_RESOURCES = ("cpu", "memory")
_HUGEPAGES_PREFIX = "hugepages-"  # also a pod-level resource, though not one QoS counts

ResourceList = dict[str, Decimal]


@dataclass(frozen=True)
class _Requirements:
    kind: Literal["container", "init", "sidecar"]  # a sidecar: restartPolicy: Always
    requests: ResourceList  # cpu and memory only, requests defaulted from limits
    limits: ResourceList


def qos_class(spec: Mapping[str, Any]) -> QosClass:
    """The QoS class of a Pod with this spec (a core/v1 PodSpec as JSON).

    Raises ValueError naming the field when a resources field is not an object of quantities.
    """
    containers = _all_requirements(spec)
    pod_level = _pod_level(spec, containers)
    if pod_level is not None:
        requests, limits = (_positive(values) for values in pod_level)
        guaranteed = all(name in limits for name in QOS_RESOURCES)
    else:
        requests, limits, guaranteed = {}, {}, True
        for container in containers:
            _add(requests, _positive(container.requests))
            positive_limits = _positive(container.limits)
            _add(limits, positive_limits)
            guaranteed &= all(name in positive_limits for name in QOS_RESOURCES)
    if not requests and not limits:
        return BEST_EFFORT
    if guaranteed and requests == limits:
        return GUARANTEED
    return BURSTABLE


def is_guaranteed(spec: Mapping[str, Any]) -> bool:
    """Whether `qos_class(spec)` is Guaranteed; quicker for the common Pod that is not, whose
    quantities it then need not read. Raises ValueError as `qos_class` does."""
    if not pod_level_resources_set(spec) and _lacks_a_limit(spec):
        return False
    return qos_class(spec) == GUARANTEED


def _lacks_a_limit(spec: Mapping[str, Any]) -> bool:
    """Whether a container of the right shape sets no cpu or no memory limit at all."""
    for field in ("containers", "initContainers"):
        for container in spec.get(field) or ():
            resources = container.get("resources")
            limits = resources.get("limits") if isinstance(resources, Mapping) else resources
            if limits is None or (
                isinstance(limits, Mapping) and not ("cpu" in limits and "memory" in limits)
            ):
                return True
    return False


def pod_level_resources_set(spec: Mapping[str, Any]) -> bool:
    """Whether the Pod sets pod-level resources that Kubernetes manages (`IsPodLevelResourcesSet`):
    then they, not its containers', decide its QoS class."""
    resources = spec.get("resources")
    if not isinstance(resources, Mapping):
        return False
    return any(
        name in QOS_RESOURCES or str(name).startswith(_HUGEPAGES_PREFIX)
        for field in ("requests", "limits")
        if isinstance(resources.get(field), Mapping)
        for name in resources[field]
    )


def pod_level_qos_resources(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The QoS resources (cpu, memory) the Pod requests or limits at the pod level."""
    resources = spec.get("resources")
    if not isinstance(resources, Mapping):
        return ()
    fields = [resources.get(field) for field in ("requests", "limits")]
    return tuple(
        name
        for name in QOS_RESOURCES
        if any(isinstance(values, Mapping) and name in values for values in fields)
    )


def requests_at_limits(resources: Mapping[str, Any]) -> dict[str, Any]:
    """A container's `resources` with its cpu and memory requests equal to its limits, where it
    sets a limit above zero; its other fields unchanged. `resources` is valid (see
    `missing_limits`)."""
    limits = resources.get("limits") or {}
    raised = {name: limits[name] for name in QOS_RESOURCES if _is_positive(limits.get(name))}
    if not raised:
        return dict(resources)
    return {**resources, "requests": {**(resources.get("requests") or {}), **raised}}


def without_resources(resources: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """A container's `resources` without requests or limits for `names`, and without a
    `requests` or `limits` left empty."""
    left_out = set(names)
    result = dict(resources)
    for field in ("requests", "limits"):
        if field in result:
            kept = {name: v for name, v in result[field].items() if name not in left_out}
            if kept:
                result[field] = kept
            else:
                del result[field]
    return result


def missing_limits(resources: Mapping[str, Any]) -> tuple[str, ...]:
    """The QoS resources (cpu, memory) a container's `resources` sets no limit above zero for: a
    Pod with such a container cannot be Guaranteed."""
    limits = resources.get("limits") or {}
    return tuple(name for name in QOS_RESOURCES if not _is_positive(limits.get(name)))


def _is_positive(value: Any) -> bool:
    return value is not None and _quantity(value, "a limit") > 0


def _all_requirements(spec: Mapping[str, Any]) -> list[_Requirements]:
    """The containers' and then the init containers' requirements, in order (ephemeral
    containers cannot set resources and never count)."""
    requirements = []
    for field in ("containers", "initContainers"):
        for index, container in enumerate(spec.get(field) or ()):
            where = f"spec.{field}[{index}].resources"
            requests, limits = _requests_and_limits(container.get("resources"), where)
            for name, limit in limits.items():
                requests.setdefault(name, limit)  # SetDefaults_Pod
            kind: Literal["container", "init", "sidecar"] = "container"
            if field == "initContainers":
                kind = "sidecar" if container.get("restartPolicy") == "Always" else "init"
            requirements.append(_Requirements(kind, requests, limits))
    return requirements


def _pod_level(
    spec: Mapping[str, Any], containers: list[_Requirements]
) -> tuple[ResourceList, ResourceList] | None:
    """The pod-level requests and limits after defaulting, or None without pod-level resources."""
    requests, limits = _requests_and_limits(spec.get("resources"), "spec.resources")
    if not pod_level_resources_set(spec):
        return None
    if spec["resources"].get("limits"):  # defaultPodRequests
        aggregate = _aggregate(containers)
        for name in QOS_RESOURCES:
            if name not in requests and name in aggregate:
                requests[name] = aggregate[name]
            elif name not in requests and name in limits:
                requests[name] = limits[name]
    return requests, limits


def _aggregate(containers: Iterable[_Requirements]) -> ResourceList:
    """The containers' requests as Kubernetes aggregates them for a Pod
    (`AggregateContainerRequests`, KEP-753): app containers and sidecars add up; each other init
    container runs beside the sidecars started before it; the Pod needs the larger of the two."""
    total: ResourceList = {}
    sidecars: ResourceList = {}
    init_peak: ResourceList = {}
    for container in containers:
        if container.kind == "init":
            running = dict(sidecars)
            _add(running, container.requests)
            _max(init_peak, running)
            continue
        _add(total, container.requests)
        if container.kind == "sidecar":
            _add(sidecars, container.requests)
            _max(init_peak, sidecars)
    _max(total, init_peak)
    return total


def _requests_and_limits(resources: Any, where: str) -> tuple[ResourceList, ResourceList]:
    if resources is None:
        return {}, {}
    if not isinstance(resources, Mapping):
        raise ValueError(f"{where} must be an object")
    lists = []
    for field in ("requests", "limits"):
        values = resources.get(field)
        if values is not None and not isinstance(values, Mapping):
            raise ValueError(f"{where}.{field} must be an object")
        lists.append(
            {
                name: _quantity(values[name], f"{where}.{field}.{name}")
                for name in QOS_RESOURCES
                if values is not None and values.get(name) is not None
            }
        )
    return lists[0], lists[1]


def _quantity(value: Any, where: str) -> Decimal:
    # YAML reads `cpu: 2` as a number; Kubernetes reads a JSON number as the quantity.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{where} must be a Kubernetes quantity")
    try:
        return parse_quantity(str(value))
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _positive(values: ResourceList) -> ResourceList:
    return {name: value for name, value in values.items() if value > 0}


def _add(into: ResourceList, values: ResourceList) -> None:
    for name, value in values.items():
        into[name] = into.get(name, Decimal(0)) + value


def _max(into: ResourceList, values: ResourceList) -> None:
    for name, value in values.items():
        if name not in into or value > into[name]:
            into[name] = value
