"""The goals, each checked against figures from the same run: ratios, not absolute latencies
(except the few stated in milliseconds)."""

from dataclasses import dataclass

from benchmarks.cold_start import ColdStart
from benchmarks.in_process import ReviewTiming
from benchmarks.inputs import SMALL, TYPICAL, VERY_LARGE
from benchmarks.over_http import HttpResults
from benchmarks.servers import ECHO, WEBHOOK


@dataclass(frozen=True)
class Goal:
    goal: str
    measured: str
    met: bool


def _in_process(timings: list[ReviewTiming]) -> list[Goal]:
    by_name = {timing.request.name: timing for timing in timings}
    goals = [
        Goal(
            f"{name} Pod: in-process review p50 at most {limit}x the JSON floor",
            f"{by_name[name].ratio:.2f}x",
            by_name[name].ratio <= limit,
        )
        for name, limit in ((TYPICAL, 1.5), (SMALL, 2.5), (VERY_LARGE, 0.75))
    ]
    very_large = by_name[VERY_LARGE].review.p50
    goals.append(
        Goal(
            f"{VERY_LARGE} Pod: in-process review p50 under 5 ms",
            f"{very_large * 1000:.2f} ms",
            very_large < 0.005,
        )
    )
    return goals


def _over_http(results: HttpResults) -> list[Goal]:
    goals = []
    for name, limit in ((TYPICAL, 1.5), (VERY_LARGE, 1.2)):
        ratio = (
            results.find(name, 1, WEBHOOK.name).latency.p50
            / results.find(name, 1, ECHO.name).latency.p50
        )
        goals.append(
            Goal(
                f"{name} Pod over HTTP, 1 connection: p50 at most {limit}x parse-and-echo's",
                f"{ratio:.2f}x",
                ratio <= limit,
            )
        )
    for name in (TYPICAL, VERY_LARGE):
        share = (
            results.find(name, 32, WEBHOOK.name).per_second
            / results.find(name, 32, ECHO.name).per_second
        )
        goals.append(
            Goal(
                f"{name} Pod over HTTP, 32 connections: req/s at least 80% of parse-and-echo's",
                f"{share:.0%}",
                share >= 0.8,
            )
        )
    errors = sum(run.result.errors for run in results.runs if run.function == WEBHOOK.name)
    goals.append(Goal("webhook over HTTP: no errors", f"{errors} errors", errors == 0))
    return goals


def _cold_start(cold: ColdStart) -> list[Goal]:
    # CPU time: on a shared machine, wall time also counts the waits for a CPU.
    difference = cold.import_difference
    assert difference.cpu is not None
    first = cold.first_review_embedded
    return [
        Goal(
            "import main at most 150 ms more than import functions_framework (median CPU)",
            f"{difference.cpu * 1000:+.0f} ms (wall {difference.wall * 1000:+.0f} ms)",
            difference.cpu <= 0.150,
        ),
        Goal(
            "first injecting review under 1.5 s from process start (embedded config, median)",
            "failed" if first is None else f"{first.wall * 1000:.0f} ms",
            first is not None and first.wall < 1.5,
        ),
    ]


def evaluate(timings: list[ReviewTiming], http: HttpResults, cold: ColdStart) -> list[Goal]:
    return [*_in_process(timings), *_over_http(http), *_cold_start(cold)]


def report(goals: list[Goal]) -> str:
    width = max(len(goal.goal) for goal in goals)
    return "\n".join(
        f"{'PASS' if goal.met else 'MISS'}  {goal.goal.ljust(width)}  {goal.measured}"
        for goal in goals
    )
