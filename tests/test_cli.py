"""The `injector` command as a whole: its version, and usage errors, which exit 2 in every
subcommand (argparse's own, and a value an option cannot take)."""

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from injector.cli import main

REPO = Path(__file__).resolve().parent.parent
MIXED = Path(__file__).parent / "data" / "manifests" / "mixed.yaml"


def test_version_is_the_installed_packages() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "injector", "--version"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (0, f"injector {metadata.version('injector')}\n")


def run(*argv: str) -> int:
    return main(list(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["inject"],
        ["inject", "-f", str(MIXED), "--bogus"],
        ["inject", "-f", ""],
        ["inject", "-f", str(MIXED), "-n", "Not_A_Namespace"],
        ["uninject", "-f", str(MIXED), "-o", "xml"],
        ["uninject", "-f", str(MIXED), "-n", "shop"],
        ["explain", "-f", str(MIXED), "-o", "yaml"],
        ["explain"],
        ["certs"],
        ["webhook-config", "--url", "http://insecure.example/"],
        ["webhook-config", "--url", "https://a.example/", "--timeout", "99"],
        ["serve", "--tls-cert", "tls.crt"],
        ["serve", "--port", "many"],
        ["no-such-command"],
        [],
    ],
)
def test_usage_errors_exit_2_everywhere(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = run(*argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(("usage: injector", "error: "))
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["inject", "-f", str(MIXED), "--bogus"], "usage: injector inject "),
        (["uninject", "-f", str(MIXED), "-n", "shop"], "usage: injector uninject "),
        (["certs", "--host", "a.example", "--verbose"], "usage: injector certs "),
    ],
)
def test_an_unknown_option_is_answered_with_its_commands_usage(
    argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(*argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage)
    assert f"error: unrecognized arguments: {' '.join(argv[3:])}" in err
