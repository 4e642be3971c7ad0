"""Review time without HTTP, against a floor: the standard library's json.loads + json.dumps of
the same body, timed in the same loop.

The webhook is the deployed one on the embedded configuration. Its log line is formatted as in
production and written to /dev/null, so its cost is part of the review time.
"""

import base64
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import jsonpatch

from benchmarks.inputs import Request
from benchmarks.stats import Percentiles, percentiles
from benchmarks.table import ms, table
from injector.service.logs import JsonFormatter
from injector.service.webhook import Webhook


@dataclass(frozen=True)
class ReviewTiming:
    request: Request
    iterations: int
    review: Percentiles  # seconds
    floor: Percentiles
    size: "PatchSize"

    @property
    def ratio(self) -> float:
        return self.review.p50 / self.floor.p50


@contextmanager
def _webhook_logging_to_null() -> Iterator[Webhook]:
    logger = logging.getLogger("injector")
    with open(os.devnull, "w") as null:
        handler = logging.StreamHandler(null)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        try:
            yield Webhook.from_environment({})
        finally:
            logger.removeHandler(handler)


@dataclass(frozen=True)
class PatchSize:
    """What injection adds, in bytes of compact JSON."""

    patch: int  # the JSON Patch (the response carries it base64-encoded: 4/3 of this)
    growth: int  # how much larger the stored Pod is once the patch is applied


def _compact(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def _patch_size(webhook: Webhook, request: Request) -> PatchSize:
    """Checks that the Pod is injected, and measures what the patch adds."""
    response = webhook.review(request.body)
    answer = json.loads(response.body)["response"]
    if response.status != 200 or not answer["allowed"] or "patch" not in answer:
        raise RuntimeError(f"the {request.name} Pod is not injected: {response.body[:300]!r}")
    patch = base64.b64decode(answer["patch"])
    pod = json.loads(request.body)["request"]["object"]
    patched = jsonpatch.apply_patch(pod, json.loads(patch))
    return PatchSize(len(patch), _compact(patched) - _compact(pod))


def _measure(webhook: Webhook, request: Request, iterations: int) -> ReviewTiming:
    size = _patch_size(webhook, request)
    body = request.body
    warmup = max(5, iterations // 10)
    reviews, floors = [], []
    for index in range(warmup + iterations):
        start = time.perf_counter()
        json.dumps(json.loads(body))
        middle = time.perf_counter()
        webhook.review(body)
        end = time.perf_counter()
        if index >= warmup:
            floors.append(middle - start)
            reviews.append(end - middle)
    return ReviewTiming(request, iterations, percentiles(reviews), percentiles(floors), size)


def measure(requests: Iterable[Request], iterations: Mapping[str, int]) -> list[ReviewTiming]:
    """`iterations[request.name]` timed reviews of each request, each beside its floor."""
    with _webhook_logging_to_null() as webhook:
        return [_measure(webhook, request, iterations[request.name]) for request in requests]


def report(timings: list[ReviewTiming]) -> str:
    header = ["request", "bytes", "containers", "iterations"]
    header += ["review p50 ms", "review p99 ms", "floor p50 ms", "floor p99 ms", "p50 ratio"]
    header += ["patch bytes", "Pod growth bytes"]
    rows = [
        [
            t.request.name,
            str(len(t.request.body)),
            str(t.request.containers),
            str(t.iterations),
            ms(t.review.p50),
            ms(t.review.p99),
            ms(t.floor.p50),
            ms(t.floor.p99),
            f"{t.ratio:.2f}x",
            str(t.size.patch),
            str(t.size.growth),
        ]
        for t in timings
    ]
    return table(header, rows)
