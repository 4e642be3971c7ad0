"""Other service meshes, recognised in a Pod they have already injected.

A second mesh's proxy in the same Pod breaks both: each init container's redirect rules send the
other proxy's traffic back into its own proxy (a loop), a classic init container that runs after
the other mesh's replaces its rules, and both proxies may want the same ports and uid. A Pod is
recognised by what the other mesh's injector adds — its proxy and init containers (in either
list: native sidecars are init containers) and the annotation or label recording the injection —
never by ports, which any application may use, nor by the other mesh's own opt-in or opt-out
annotation, which says nothing about whether it has injected yet.

The names come from each mesh's injector:

- Istio: `istio-proxy`, `istio-init` (or `istio-validation` with Istio CNI), and the annotation
  `sidecar.istio.io/status` (pkg/kube/inject).
- Linkerd: `linkerd-proxy`, `linkerd-init` (or `linkerd-network-validator` with Linkerd CNI), and
  the annotation `linkerd.io/proxy-version` (pkg/inject, charts/partials).
- Kuma: `kuma-sidecar`, `kuma-init`, and the annotation `kuma.io/sidecar-injected`
  (pkg/plugins/runtime/k8s).
- Consul: `consul-dataplane` (`envoy-sidecar` before consul-k8s 1.0),
  `consul-connect-inject-init`, and the annotation `consul.hashicorp.com/connect-inject-status`
  (control-plane/connect-inject).
- Open Service Mesh: `osm-init` and the label `osm-proxy-uuid` (pkg/constants); its proxy is
  named plain `envoy`, which is left out: an application may well run its own Envoy.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Mesh:
    name: str
    containers: frozenset[str]  # its proxy and init containers
    annotations: tuple[str, ...] = ()  # annotation keys its injector writes
    labels: tuple[str, ...] = ()  # label keys its injector writes


MESHES: tuple[Mesh, ...] = (
    Mesh(
        "Istio",
        frozenset({"istio-proxy", "istio-init", "istio-validation"}),
        annotations=("sidecar.istio.io/status",),
    ),
    Mesh(
        "Linkerd",
        frozenset({"linkerd-proxy", "linkerd-init", "linkerd-network-validator"}),
        annotations=("linkerd.io/proxy-version",),
    ),
    Mesh(
        "Kuma",
        frozenset({"kuma-sidecar", "kuma-init"}),
        annotations=("kuma.io/sidecar-injected",),
    ),
    Mesh(
        "Consul",
        frozenset({"consul-dataplane", "envoy-sidecar", "consul-connect-inject-init"}),
        annotations=("consul.hashicorp.com/connect-inject-status",),
    ),
    Mesh("Open Service Mesh", frozenset({"osm-init"}), labels=("osm-proxy-uuid",)),
)


@dataclass(frozen=True)
class Recognised:
    mesh: Mesh
    evidence: tuple[str, ...]  # what gave it away, in words: "container istio-proxy", …

    def describe(self) -> str:
        return f"{self.mesh.name} already injected the Pod ({', '.join(self.evidence)})"


_CONTAINERS = frozenset(name for mesh in MESHES for name in mesh.containers)
_ANNOTATIONS = tuple(key for mesh in MESHES for key in mesh.annotations)
_LABELS = tuple(key for mesh in MESHES for key in mesh.labels)


def other_mesh(
    container_names: Sequence[str],
    annotations: Mapping[str, str],
    labels: Mapping[str, str],
) -> Recognised | None:
    """The first mesh in MESHES that has injected a Pod with these containers (app and init),
    annotations and labels, with the evidence; None when no other mesh has."""
    if (
        _CONTAINERS.isdisjoint(container_names)
        and not any(key in annotations for key in _ANNOTATIONS)
        and not any(key in labels for key in _LABELS)
    ):
        return None  # the common case, answered without building any evidence
    for mesh in MESHES:
        evidence = (
            *(f"container {name}" for name in container_names if name in mesh.containers),
            *(f"annotation {key}" for key in mesh.annotations if key in annotations),
            *(f"label {key}" for key in mesh.labels if key in labels),
        )
        if evidence:
            return Recognised(mesh, evidence)
    return None
