"""YAML output in the order the data was built, without anchors or aliases."""

from typing import Any, TextIO

from ruamel.yaml import YAML


def yaml_writer() -> YAML:
    yaml = YAML()
    yaml.representer.ignore_aliases = lambda *_: True
    return yaml


def dump_yaml(data: Any, stream: TextIO) -> None:
    yaml_writer().dump(data, stream)
