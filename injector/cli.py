"""`python -m injector COMMAND`: the webhook server, local-cluster helpers and manifest tools.

Exit codes: 0 success, 1 invalid input, 2 usage error.
"""

import argparse
import signal
import sys

from injector import manifest_commands, server_commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m injector",
        description="Sidecar proxy injector for Kubernetes service meshes.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server_commands.add_commands(commands)
    manifest_commands.add_commands(commands)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
