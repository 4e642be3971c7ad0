"""YAML for kubectl: objects written in the order they were built, without anchors or aliases."""

from typing import Any, TextIO

from ruamel.yaml import YAML


def dump_yaml(data: Any, stream: TextIO) -> None:
    """Writes one object as a YAML document."""
    yaml = YAML()
    yaml.representer.ignore_aliases = lambda *_: True
    yaml.dump(data, stream)
