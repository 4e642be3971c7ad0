"""`injector COMMAND` (or `python -m injector COMMAND`): the webhook server, local-cluster
helpers and the manifest tools.

Every failure the injector names is an `InjectorError`: it is printed here, once, as
`error: <message>` on stderr, and becomes the command's exit code: 1, or 2 for a usage error
(argparse's own, and `InvalidArgument`). `injector --version` prints the version.
"""

import argparse
import signal
import sys
from importlib import metadata

from injector.cluster import commands as cluster_commands
from injector.errors import InjectorError
from injector.manifests import commands as manifest_commands
from injector.service import serve


def parser() -> argparse.ArgumentParser:
    """The command line: every subcommand, each with its own help."""
    root = argparse.ArgumentParser(
        prog="injector",
        description="Sidecar proxy injector for Kubernetes service meshes.",
    )
    root.add_argument("--version", action="version", version=f"injector {_version()}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.add_command(commands)
    cluster_commands.add_commands(commands)
    manifest_commands.add_commands(commands)
    for command_parser in commands.choices.values():
        command_parser.set_defaults(command_parser=command_parser)
    return root


def _version() -> str:
    """The installed package's version (pyproject.toml's)."""
    try:
        return metadata.version("injector")
    except metadata.PackageNotFoundError:
        return "(not installed: run pip install . for a version)"


def console() -> None:
    """The `injector` command: runs main on the process's arguments and exits with its code."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `injector ... | head` ends quietly
    sys.exit(main())


def main(argv: list[str] | None = None) -> int:
    """Runs one command; returns its exit code (argparse exits 2 itself on a usage error,
    and exits 0 itself for --help and --version)."""
    args, unknown = parser().parse_known_args(argv)
    if unknown:  # said by the command's own parser, with the command's usage
        args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.run(args)
    except InjectorError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
