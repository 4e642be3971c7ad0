"""Writing documents: YAML in each file's own indentation, or JSON."""

import datetime
import functools
from collections.abc import Sequence
from typing import Any, TextIO

import orjson
from ruamel.yaml import YAML
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.scalarstring import LiteralScalarString

from injector.manifests.documents import Document, YamlStyle


def write_yaml(documents: Sequence[Document], stream: TextIO) -> None:
    for position, document in enumerate(documents):
        if position or document.style.explicit_start:
            stream.write("---\n")
        write_yaml_data(document.data, document.style, stream)


def write_yaml_data(data: Any, style: YamlStyle, stream: TextIO) -> None:
    _yaml_writer(style).dump(data, stream)


def write_json(documents: Sequence[Document], stream: TextIO) -> None:
    """One object as itself, several as a v1 List (as `kubectl get -o json` prints them)."""
    if len(documents) == 1:
        data: Any = documents[0].data
    else:
        data = {"apiVersion": "v1", "kind": "List", "items": [d.data for d in documents]}
    stream.write(to_json(data, indent=True).decode())
    stream.write("\n")


def to_json(value: Any, *, indent: bool = False) -> bytes:
    """JSON for data read from YAML or JSON, whatever types the YAML reader gave its values."""
    options = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME
    return orjson.dumps(
        value, default=_plain, option=options | (orjson.OPT_INDENT_2 if indent else 0)
    )


def to_plain(value: Any) -> Any:
    """The same data as plain JSON types, as the API server would send it to the webhook."""
    return orjson.loads(to_json(value))


def _plain(value: Any) -> Any:
    if isinstance(value, ScalarBoolean):  # an int subclass, for anchored booleans
        return bool(value)
    for kind in (dict, list, str, int, float):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


def with_block_strings(value: Any) -> Any:
    """A copy in which multi-line strings are YAML literal blocks, to be read line by line."""
    if isinstance(value, dict):
        return {key: with_block_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_block_strings(item) for item in value]
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    return value


@functools.cache
def _yaml_writer(style: YamlStyle) -> YAML:
    yaml = YAML()
    yaml.indent(
        mapping=style.mapping_indent,
        sequence=style.sequence_offset + 2,
        offset=style.sequence_offset,
    )
    yaml.width = 4096  # long values stay on one line, as they were written
    return yaml
