"""AdmissionReview requests and responses (admission.k8s.io/v1 and v1beta1).

Only the envelope is modelled; the object under review stays the JSON it arrived as. Fields
this model does not know are ignored, so a newer API server's additions do no harm. A response
is built from its request (`AdmissionResponse.to(review)`), so that the uid and the apiVersion
the API server checks cannot be forgotten; see the Kubernetes reference "Dynamic Admission
Control", section "Response".
"""

import base64
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from injector.errors import InvalidReview, describe_validation_error
from injector.kube.patch import Operation


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
        """A CREATE of core/v1 pods, not of a subresource: the only request that is mutated."""
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
    """The AdmissionReview request in a body; InvalidReview says in one line what is wrong."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidReview(f"the body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidReview("the body is not an AdmissionReview: expected a JSON object")
    try:
        review = AdmissionReview.model_validate(data)
    except ValidationError as error:
        problems = describe_validation_error(error)
        raise InvalidReview(f"the body is not an AdmissionReview request: {problems}") from None
    if review.request.is_pod_create and not isinstance(review.request.object, dict):
        raise InvalidReview("request.object must be the Pod for a CREATE of pods")
    return review


@dataclass(frozen=True)
class Status:
    """Why a request is denied (metav1.Status, the fields the API server shows)."""

    code: int  # an HTTP status code
    message: str


@dataclass(frozen=True)
class AdmissionResponse:
    """The answer to one AdmissionReview request; allowed, with nothing to change, until told."""

    api_version: str
    uid: str
    allowed: bool = True
    patch: tuple[Operation, ...] = ()
    warnings: tuple[str, ...] = ()
    status: Status | None = None

    @classmethod
    def to(cls, review: AdmissionReview) -> "AdmissionResponse":
        """The response to a request, in the request's apiVersion and for its uid."""
        return cls(api_version=review.api_version, uid=review.request.uid)

    def deny(self, code: int, message: str) -> "AdmissionResponse":
        """Refused: the API server does not create the object and shows the message."""
        return dataclasses.replace(self, allowed=False, patch=(), status=Status(code, message))

    def with_patch(self, operations: Sequence[Operation]) -> "AdmissionResponse":
        """Allowed with these JSON Patch (RFC 6902) operations applied to the object."""
        return dataclasses.replace(self, patch=tuple(operations))

    def with_warnings(self, warnings: Sequence[str]) -> "AdmissionResponse":
        """With warnings for the requester (kubectl prints them)."""
        return dataclasses.replace(self, warnings=(*self.warnings, *warnings))

    def into_review(self) -> bytes:
        """The AdmissionReview JSON the API server reads."""
        response: dict[str, Any] = {"uid": self.uid, "allowed": self.allowed}
        if self.patch:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(orjson.dumps(self.patch)).decode()
        if self.warnings:
            response["warnings"] = list(self.warnings)
        if self.status is not None:
            response["status"] = {"code": self.status.code, "message": self.status.message}
        return orjson.dumps(
            {"apiVersion": self.api_version, "kind": "AdmissionReview", "response": response}
        )
