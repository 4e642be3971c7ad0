"""The captured AdmissionReview requests, and decoding and applying the patches in responses."""

import base64
from pathlib import Path
from typing import Any

import jsonpatch
import orjson

from injector.core.engine import Injector, Outcome
from injector.service.admission import parse_review
from injector.service.refresh import Refreshing
from injector.service.webhook import ActiveConfig, Webhook

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


def webhook_for(injector: Injector) -> Webhook:
    """The webhook, in process, serving the injector's configuration."""
    active = ActiveConfig(injector, "test", "test")
    return Webhook(Refreshing("configuration", lambda: active, 3600, ActiveConfig.describe), None)


def respond(injector: Injector, body: bytes) -> tuple[dict[str, Any], Outcome]:
    """The webhook's AdmissionReview response to a request body, parsed, and its outcome."""
    answer = webhook_for(injector).respond(parse_review(body))
    return orjson.loads(answer.response.into_review()), answer.outcome
