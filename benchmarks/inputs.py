"""The request bodies the benchmarks send: captured from a Kubernetes v1.32 API server, or built
from captured ones."""

import copy
import json
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data"

SMALL = "small"
TYPICAL = "typical"
VERY_LARGE = "very large"

# Copies of the typical Pod's two containers added to the 2,000-env-var Pod: 17 containers in all.
EXTRA_COPIES = 8


@dataclass(frozen=True)
class Request:
    name: str
    body: bytes
    containers: int


def _containers(body: bytes) -> int:
    return len(json.loads(body)["request"]["object"]["spec"]["containers"])


def very_large_pod(large_env: bytes, typical: bytes) -> bytes:
    """The 2,000-env-var Pod, plus EXTRA_COPIES copies of the typical Pod's containers and its
    volumes, serialised as the API server sends it: one line of compact JSON and a newline."""
    review = json.loads(large_env)
    spec = review["request"]["object"]["spec"]
    typical_spec = json.loads(typical)["request"]["object"]["spec"]
    service_account_volume = spec["volumes"][0]["name"]
    spec["volumes"] += [
        volume
        for volume in typical_spec["volumes"]
        if not volume["name"].startswith("kube-api-access-")
    ]
    for number in range(1, EXTRA_COPIES + 1):
        for container in typical_spec["containers"]:
            added = copy.deepcopy(container)
            added["name"] = f"{container['name']}-{number}"
            for port in added["ports"]:
                port["containerPort"] += number
            for mount in added["volumeMounts"]:
                if mount["name"].startswith("kube-api-access-"):
                    mount["name"] = service_account_volume
            spec["containers"].append(added)
    return json.dumps(review, separators=(",", ":")).encode() + b"\n"


def load() -> dict[str, Request]:
    small = (DATA / "b-minimal-pod.json").read_bytes()
    typical = (DATA / "a-deployment-pod.json").read_bytes()
    very_large = very_large_pod((DATA / "h-large-env-2000.json").read_bytes(), typical)
    bodies = {SMALL: small, TYPICAL: typical, VERY_LARGE: very_large}
    return {name: Request(name, body, _containers(body)) for name, body in bodies.items()}
