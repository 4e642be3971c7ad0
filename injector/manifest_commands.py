"""`inject`, `uninject` and `explain` for manifests (placeholder until implemented)."""

import argparse


def add_commands(commands: argparse._SubParsersAction) -> None:
    pass
