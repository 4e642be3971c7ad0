"""The captured AdmissionReview requests, and decoding and applying the patches in responses."""

import base64
from pathlib import Path
from typing import Any

import jsonpatch
import orjson

DATA = Path(__file__).parent / "data"
CAPTURED = DATA / "admission-reviews"


def captured(name: str) -> bytes:
    """A request body exactly as a Kubernetes v1.32 API server sent it."""
    return (CAPTURED / name).read_bytes()


def decode_patch(response: dict[str, Any]) -> list[dict[str, Any]]:
    assert response["patchType"] == "JSONPatch"
    return orjson.loads(base64.b64decode(response["patch"]))


def apply_patch(document: Any, operations: Any) -> Any:
    """Applies operations with a real JSON Patch implementation, after a JSON round trip."""
    return jsonpatch.JsonPatch(orjson.loads(orjson.dumps(operations))).apply(document)
