"""RFC 6902 JSON Patch operations, built directly (add-only, never by diffing documents)."""

from collections.abc import Mapping, Sequence
from typing import Any

Operation = dict[str, Any]


def escape(token: str) -> str:
    """A JSON Pointer reference token (RFC 6901): '~' first, then '/'."""
    return token.replace("~", "~0").replace("/", "~1")


def add_to_array(
    ops: list[Operation],
    pointer: str,
    existing: list[Any] | None,
    *,
    leading: Sequence[Any] = (),
    trailing: Sequence[Any] = (),
) -> None:
    """Adds items before and after an array's items, creating it exactly once when absent."""
    if existing is None:
        if leading or trailing:
            ops.append({"op": "add", "path": pointer, "value": [*leading, *trailing]})
        return
    for index, item in enumerate(leading):
        ops.append({"op": "add", "path": f"{pointer}/{index}", "value": item})
    for item in trailing:
        ops.append({"op": "add", "path": f"{pointer}/-", "value": item})


def add_to_object(
    ops: list[Operation],
    pointer: str,
    existing: Mapping[str, Any] | None,
    entries: Mapping[str, Any],
) -> None:
    """Adds members to an object, creating it exactly once when it is absent."""
    if not entries:
        return
    if existing is None:
        ops.append({"op": "add", "path": pointer, "value": dict(entries)})
        return
    for key, value in entries.items():
        ops.append({"op": "add", "path": f"{pointer}/{escape(key)}", "value": value})
