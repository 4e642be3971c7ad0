"""The sample requests in examples/ give the answers the README shows."""

import subprocess
from pathlib import Path

import pytest
from admission_data import respond

from injector.core.engine import Injector

REPO = Path(__file__).parent.parent
EXAMPLES = REPO / "examples" / "admission-reviews"
EXPECTED = {
    "pod-create.json": ("injected", "injected"),
    "deployment-pod-create.json": ("injected", "injected"),
    "host-network-pod-create.json": ("skipped", "host-network"),
    "opted-out-pod-create.json": ("skipped", "opted-out"),
    "invalid-annotation-pod-create.json": ("denied", "invalid-annotation"),
    "pod-update.json": ("skipped", "not-a-pod-create"),
}


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_outcome(injector: Injector, name: str) -> None:
    answer, outcome = respond(injector, (EXAMPLES / name).read_bytes())
    assert (outcome.decision, outcome.reason) == EXPECTED[name]
    assert answer["response"]["allowed"] is (outcome.decision != "denied")


def test_the_examples_are_not_ignored_by_git() -> None:
    """A clone has every example the README points at, and an edited one shows in git status."""
    examples = sorted(str(path.relative_to(REPO)) for path in (REPO / "examples").rglob("*.*"))
    assert "examples/config.yaml" in examples
    checked = subprocess.run(
        ["git", "check-ignore", "--no-index", "--verbose", *examples],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (checked.returncode, checked.stdout) == (1, ""), checked.stdout + checked.stderr
