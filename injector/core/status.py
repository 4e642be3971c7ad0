"""The status annotation: the record of exactly what injection added to a Pod.

Injection writes it; its presence (or one of the injector's containers) means "already
injected", which makes a second review a no-op; `uninject` reads it to remove exactly what it
lists. The annotation's value is compact JSON:

    {"config": "<digest>", "initContainers": [...], "containers": [...], "volumes": [...],
     "annotations": [...], "labels": [...], "created": ["/spec/initContainers", ...]}

`created` lists the JSON Pointers (RFC 6901) of the arrays and objects the patch created,
which removal deletes again once they are empty.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from injector.core.keys import INJECTED_CONTAINERS, Keys
from injector.errors import InvalidStatus, describe_value

_LISTS = {
    "initContainers": "init_containers",
    "containers": "containers",
    "volumes": "volumes",
    "annotations": "annotations",
    "labels": "labels",
    "created": "created",
}


@dataclass(frozen=True)
class InjectionStatus:
    config: str  # the digest of the configuration that injected
    init_containers: tuple[str, ...]
    containers: tuple[str, ...]
    volumes: tuple[str, ...]
    annotations: tuple[str, ...]  # the status annotation's own key included
    labels: tuple[str, ...]
    created: tuple[str, ...]  # JSON Pointers into the Pod

    def to_annotation(self) -> str:
        record: dict[str, Any] = {"config": self.config}
        record.update((name, list(getattr(self, field))) for name, field in _LISTS.items())
        return orjson.dumps(record).decode()

    @classmethod
    def from_annotation(cls, text: Any) -> "InjectionStatus":
        """The record in an annotation's value; InvalidStatus says which part is wrong."""
        try:
            record = orjson.loads(str(text)) if isinstance(text, str) else None
        except orjson.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            raise InvalidStatus("the value is not a JSON object")
        lists: dict[str, tuple[str, ...]] = {}
        for name, field in _LISTS.items():
            value = record.get(name, [])
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                kind = describe_value(value)
                raise InvalidStatus(f"{name} must be a list of strings, not {kind}")
            lists[field] = tuple(value)
        if not all(pointer.startswith("/") for pointer in lists["created"]):
            raise InvalidStatus("created must list JSON Pointers")
        return cls(config=str(record.get("config", "")), **lists)


def is_injected(keys: Keys, annotations: Mapping[str, str], container_names: Iterable[str]) -> bool:
    """Whether a Pod carries the status annotation or one of the injector's containers."""
    return keys.status in annotations or not INJECTED_CONTAINERS.isdisjoint(container_names)
