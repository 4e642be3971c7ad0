"""The webhook's HTTP contract, around the engine.

| request                                   | answer                                           |
|-------------------------------------------|--------------------------------------------------|
| POST an AdmissionReview (JSON)            | 200 with the AdmissionReview response            |
| GET /healthz                              | 200 with the config's source and digest, or 503  |
| a path without a valid token (if any set) | 404, with no hint                                |
| another method                            | 405                                              |
| a content type other than JSON            | 415                                              |
| a body over MAX_BODY_BYTES                | 413                                              |
| malformed JSON, or not an AdmissionReview | 400 with a one-line JSON error                   |

With tokens configured, the first path segment must be one of them: /<token> reviews and
/<token>/healthz reports health. Without tokens, /healthz reports health and any other path
reviews.
"""

import hmac
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from injector.core.engine import Injector, Outcome
from injector.core.policy import Reason
from injector.errors import InvalidReview
from injector.service.admission import (
    AdmissionRequest,
    AdmissionResponse,
    AdmissionReview,
    parse_review,
)
from injector.service.refresh import Refreshing
from injector.service.sources import Environment, environment

MAX_BODY_BYTES = 8 * 1024 * 1024  # the API server's objects are at most ~3 MiB

log = logging.getLogger("injector")

NOT_A_POD_CREATE = Outcome("skipped", Reason.NOT_A_POD_CREATE, "only Pod CREATEs are mutated")
NO_CONFIG = Outcome(
    "denied", Reason.NO_CONFIG, "the injector has no valid configuration; see its logs"
)
INTERNAL_ERROR = Outcome("denied", Reason.INTERNAL_ERROR, "internal error")


JSON = (("Content-Type", "application/json"),)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = JSON


def _error(status: int, message: str, allow: str | None = None) -> HttpResponse:
    headers = JSON if allow is None else (*JSON, ("Allow", allow))
    return HttpResponse(status, orjson.dumps({"error": message}), headers)


_NOT_FOUND = _error(404, "not found")
_NOT_READY = _error(503, "the injector is not ready; see its logs")


def _is_one_of(candidate: str, tokens: tuple[str, ...]) -> bool:
    given = candidate.encode()
    valid = False
    for token in tokens:
        valid |= hmac.compare_digest(given, token.encode())  # no early exit: constant time
    return valid


@dataclass(frozen=True)
class Answer:
    """The webhook's answer to one AdmissionReview request."""

    response: AdmissionResponse
    outcome: Outcome
    config_digest: str | None  # the configuration that decided, if one was needed and loaded


@dataclass(frozen=True)
class ActiveConfig:
    injector: Injector
    source: str
    version: str

    def describe(self) -> str:
        """For logs: "file /etc/injector.yaml (digest …)", or "embedded (digest …)"."""
        version = "" if self.version == self.source else f" {self.version}"
        return f"{self.source}{version} (digest {self.injector.digest})"


class Webhook:
    def __init__(
        self,
        config: Refreshing[ActiveConfig],
        tokens: Refreshing[tuple[str, ...]] | None,
        on_error: Literal["deny", "allow"] = "deny",
    ):
        self._config = config
        self._tokens = tokens
        self._on_error = on_error

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> "Webhook":
        """A webhook on the sources the environment names; loads them once right away."""
        env: Environment = environment(environ)

        def load_config() -> ActiveConfig:
            loaded = env.config.load()
            return ActiveConfig(Injector(loaded.config), loaded.source, loaded.version)

        config = Refreshing(
            "configuration", load_config, env.refresh_seconds, ActiveConfig.describe
        )
        tokens = None
        if env.tokens is None:
            log.warning("no URL token is configured: every path is served (fine for local use)")
        else:
            tokens = Refreshing("URL tokens", env.tokens.load, env.refresh_seconds, _count_tokens)
            tokens.get()
        log.info(f"configuration source: {env.config.description}")
        config.get()
        return cls(config, tokens, env.on_error)

    def handle(
        self,
        method: str,
        path: str,
        content_type: str | None,
        content_length: int | None,
        read_body: Callable[[int], bytes],
    ) -> HttpResponse:
        """Answers one HTTP request; read_body(limit) returns at most `limit` bytes."""
        segments = [s for s in path.split("/") if s]
        if self._tokens is not None:
            tokens = self._tokens.get()
            if tokens is None:
                # Nobody can be let in; the API server then applies its failurePolicy.
                return _NOT_READY
            if not segments or not _is_one_of(segments[0], tokens):
                return _NOT_FOUND
            segments = segments[1:]
        if segments == ["healthz"]:
            if method not in ("GET", "HEAD"):
                return _error(405, "use GET for /healthz", "GET, HEAD")
            return self.health()
        if method != "POST":
            return _error(405, "POST an AdmissionReview", "POST")
        if (content_type or "").split(";")[0].strip().lower() != "application/json":
            return _error(415, "the body must be application/json")
        if content_length is not None and content_length > MAX_BODY_BYTES:
            return _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        body = read_body(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        return self.review(body)

    def health(self) -> HttpResponse:
        active = self._config.get()
        if active is None:
            error = f"no valid configuration is loaded: {self._config.last_error}"
            return HttpResponse(503, orjson.dumps({"status": "unavailable", "error": error}))
        config = {
            "source": active.source,
            "version": active.version,
            "digest": active.injector.digest,
        }
        health: dict[str, Any] = {"status": "ok", "config": config}
        if self._config.last_error is not None:
            # Still serving the last-known-good configuration; say why it is not newer.
            health["reload_error"] = self._config.last_error
        return HttpResponse(200, orjson.dumps(health))

    def review(self, body: bytes) -> HttpResponse:
        """Answers one AdmissionReview body: 200 with the response, or 400 if it is not one."""
        started = time.perf_counter()
        try:
            review = parse_review(body)
        except InvalidReview as error:
            return _error(400, str(error))
        answer = self.respond(review)
        latency_ms = (time.perf_counter() - started) * 1000
        _log_review(review.request, answer, latency_ms)
        return HttpResponse(200, answer.response.into_review())

    def respond(self, review: AdmissionReview) -> Answer:
        """The response to a request, with the outcome and the configuration behind it."""
        request = review.request
        if not request.is_pod_create:
            return Answer(self._answer(review, NOT_A_POD_CREATE), NOT_A_POD_CREATE, None)
        active = self._config.get()
        if active is None:
            return Answer(self._answer(review, NO_CONFIG), NO_CONFIG, None)
        try:
            outcome = active.injector.evaluate(request.object, request.namespace)
        except Exception:
            log.exception("review failed", extra={"fields": {"uid": request.uid}})
            outcome = INTERNAL_ERROR
        return Answer(self._answer(review, outcome), outcome, active.injector.digest)

    def _answer(self, review: AdmissionReview, outcome: Outcome) -> AdmissionResponse:
        """The response for an outcome; when the injector could not review, per on_error."""
        response = AdmissionResponse.to(review).with_warnings(outcome.warnings)
        if outcome.reason in (Reason.NO_CONFIG, Reason.INTERNAL_ERROR):
            uid = review.request.uid
            if self._on_error == "allow":
                return response.with_warnings(
                    [f"the proxy was not injected: the injector failed (request uid {uid})"]
                )
            return response.deny(
                500,
                f"the injector could not review this Pod: {outcome.detail} (request uid {uid}); "
                "see the injector's logs",
            )
        if outcome.decision == "denied":
            return response.deny(400, outcome.detail)
        return response.with_patch(outcome.operations)


def _count_tokens(tokens: tuple[str, ...]) -> str:
    return f"{len(tokens)} token(s)"  # never the tokens themselves


def _metadata(obj: Any) -> dict[str, Any]:
    """The object's metadata, or nothing: the log line must not fail on a malformed object."""
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _owner_kind(obj: Any) -> Any:
    owners = _metadata(obj).get("ownerReferences")
    for owner in owners if isinstance(owners, list) else ():
        if isinstance(owner, dict) and owner.get("controller") is True:
            return owner.get("kind")
    return None


def _pod_name(request: AdmissionRequest) -> Any:
    metadata = _metadata(request.object)
    return metadata.get("name") or metadata.get("generateName") or request.name or None


def _log_review(request: AdmissionRequest, answer: Answer, latency_ms: float) -> None:
    outcome = answer.outcome
    resource = request.resource.resource
    if request.sub_resource:
        resource += "/" + request.sub_resource
    fields = {
        "uid": request.uid,
        "namespace": request.namespace,
        "pod": _pod_name(request),
        "owner_kind": _owner_kind(request.object),
        "operation": request.operation,
        "resource": resource,
        "dry_run": request.dry_run,
        "decision": outcome.decision,
        "reason": outcome.reason,
        "patch_ops": len(outcome.operations),
        "config_version": answer.config_digest,
        "latency_ms": round(latency_ms, 3),
    }
    severity = logging.ERROR if outcome.reason == Reason.INTERNAL_ERROR else logging.INFO
    log.log(severity, "admission review", extra={"fields": fields})
