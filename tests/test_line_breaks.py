"""Line-oriented data is split where its format breaks lines ("\\n"), never where Unicode sees a
line boundary: U+0085, U+2028 and U+2029 are ordinary characters in a JSON log line, a YAML
scalar or a token list. (The log read back from the real server: test_http_fuzz.py.)"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from lines import lines
from server import REPO

from injector.errors import InvalidTokens
from injector.service.sources import parse_tokens

LINE_BOUNDARIES = "\x85\u2028\u2029"
FIRST, SECOND = "a" * 16, "b" * 16


def test_tokens_are_separated_by_newlines_and_commas() -> None:
    assert parse_tokens(f"{FIRST}\r\n# old\n\n{SECOND},{FIRST}\n") == (FIRST, SECOND, FIRST)


@pytest.mark.parametrize("boundary", LINE_BOUNDARIES)
def test_a_unicode_line_boundary_does_not_separate_tokens(boundary: str) -> None:
    with pytest.raises(InvalidTokens) as error:
        parse_tokens(f"{FIRST}{boundary}{SECOND}")
    assert str(error.value) == "token 1 is not 16 to 256 characters from A-Z, a-z, 0-9, '-' and '_'"


def test_explain_keeps_a_scalar_holding_a_line_separator_on_its_line(tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n"
        "  annotations:\n    remark: 'before\u2028after'\n"
        "spec:\n  containers:\n  - name: web\n    image: nginx\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "injector", "explain", "-f", str(manifest)],
        cwd=REPO,
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    remarks = [line for line in lines(result.stdout) if "remark: " in line]
    assert len(remarks) == 1, remarks
    assert remarks[0].strip().startswith("remark: 'before\u2028")
    assert remarks[0].endswith("after'")


def test_nothing_splits_lines_with_str_splitlines() -> None:
    """str.splitlines breaks at U+2028 and the like, which none of these formats do."""
    sources = [
        path
        for folder in ("injector", "tests", "benchmarks")
        for path in sorted((REPO / folder).rglob("*.py"))
    ]
    assert len(sources) > 50
    offenders = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in sources
        for node in ast.walk(ast.parse(path.read_bytes(), str(path)))
        if isinstance(node, ast.Attribute) and node.attr == "splitlines"
    ]
    assert offenders == []
