"""Percentiles of timing samples."""

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p99: float


def percentiles(samples: Sequence[float]) -> Percentiles:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return Percentiles(p50=cuts[49], p99=cuts[98])
