"""AdmissionReview requests and responses (admission.k8s.io/v1 and v1beta1).

Only the envelope is modelled; the object under review stays the JSON it arrived as.
Fields this model does not know are ignored, so a newer API server's additions do no harm.
"""

import base64
from collections.abc import Sequence
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from injector.patch import Operation
from injector.validation import describe_validation_error


class InvalidReview(ValueError):
    """The body is not an AdmissionReview request; the message says what is wrong."""


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class GroupVersionResource(_Envelope):
    group: str
    version: str
    resource: str


class AdmissionRequest(_Envelope):
    uid: str = Field(min_length=1)
    resource: GroupVersionResource
    sub_resource: str = Field(default="", alias="subResource")
    name: str = ""
    namespace: str = ""
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    object: Any = None
    dry_run: bool = Field(default=False, alias="dryRun")

    @property
    def is_pod_create(self) -> bool:
        return (
            self.operation == "CREATE"
            and self.resource.group == ""
            and self.resource.resource == "pods"
            and not self.sub_resource
        )


class AdmissionReview(_Envelope):
    api_version: Literal["admission.k8s.io/v1", "admission.k8s.io/v1beta1"] = Field(
        alias="apiVersion"
    )
    kind: Literal["AdmissionReview"]
    request: AdmissionRequest


def parse_review(body: bytes) -> AdmissionReview:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidReview(f"the body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidReview("the body is not an AdmissionReview: expected a JSON object")
    try:
        return AdmissionReview.model_validate(data)
    except ValidationError as error:
        problems = describe_validation_error(error)
        raise InvalidReview(f"the body is not an AdmissionReview request: {problems}") from None


def respond(
    review: AdmissionReview,
    *,
    allowed: bool = True,
    patch: Sequence[Operation] = (),
    warnings: Sequence[str] = (),
    status_code: int | None = None,
    status_message: str | None = None,
) -> bytes:
    """The AdmissionReview response, in the request's apiVersion, for the request's uid."""
    response: dict[str, Any] = {"uid": review.request.uid, "allowed": allowed}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(orjson.dumps(patch)).decode()
    if warnings:
        response["warnings"] = list(warnings)
    if status_message is not None:
        response["status"] = {"code": status_code, "message": status_message}
    return orjson.dumps(
        {"apiVersion": review.api_version, "kind": "AdmissionReview", "response": response}
    )
