"""`python -m benchmarks --quick` runs and reports every measurement with figures.

The goals are printed, not asserted here: timings on a shared machine make no test.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from lines import lines

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def output() -> str:
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,  # the assertion shows the output
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout


def _rows(output: str, title: str) -> list[list[str]]:
    """The cells of each row of the table under the section `title`, below its header."""
    for block in output.split("\n\n"):
        rows = lines(block)
        if rows and rows[0].startswith(title):
            return [re.split(r"\s{2,}", line.strip()) for line in rows[3:]]
    raise AssertionError(f"no section {title!r} in:\n{output}")


def _figures(cells: list[str]) -> bool:
    return bool(cells) and all(re.search(r"\d", cell) for cell in cells)


def test_reports_the_machine(output: str) -> None:
    assert re.match(r"Machine: .+, \d+ logical CPUs, Python 3\.\d+", output)


def test_reports_in_process_reviews_against_the_floor(output: str) -> None:
    rows = _rows(output, "1. In-process review")
    assert [row[0] for row in rows] == ["small", "typical", "very large"]
    assert all(len(row) == 11 and _figures(row[1:]) for row in rows), rows


def test_reports_http_runs_for_both_functions(output: str) -> None:
    rows = _rows(output, "2. HTTP")
    runs = {(row[0], row[1], row[2]) for row in rows}
    assert runs == {
        (request, connections, function)
        for request in ("typical", "very large")
        for connections in ("1", "8", "32")
        for function in ("webhook", "parse-and-echo")
    }
    # The parse-and-echo rows leave the two comparison columns empty.
    figures = {"webhook": 7, "parse-and-echo": 5}
    assert all(len(row[3:]) == figures[row[2]] and _figures(row[3:]) for row in rows), rows


def test_reports_cold_start(output: str) -> None:
    rows = _rows(output, "3. Cold start")
    assert len(rows) == 5
    # CPU time is measured for the imports only.
    assert all(len(row) == 4 and _figures(row[1:3]) for row in rows), rows
    assert all(_figures(row[3:]) for row in rows[:3]), rows


def test_reports_peak_memory_of_both_servers(output: str) -> None:
    rows = _rows(output, "4. Peak RSS")
    assert [row[0] for row in rows] == ["webhook", "parse-and-echo"]
    assert all(_figures(row[1:]) for row in rows), rows


def test_reports_every_goal_as_pass_or_miss(output: str) -> None:
    goals = lines(output.split("\nGoals\n-----\n", 1)[1].strip())
    verdicts = [line for line in goals if line.startswith(("PASS  ", "MISS  "))]
    assert len(verdicts) == 11
    assert all(re.search(r"\d", line) for line in verdicts)
