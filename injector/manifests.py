"""Documents read from manifest files, and the error that names where a manifest is wrong."""

from dataclasses import dataclass
from typing import Any


class ManifestError(ValueError):
    """Invalid input; the message names the file, the document and the field."""


@dataclass(frozen=True)
class YamlStyle:
    """How a YAML file indents, so that rewriting it changes only what the command changes."""

    mapping_indent: int = 2
    sequence_offset: int = 0  # spaces before a block sequence's dash, relative to its key
    explicit_start: bool = False  # the first document starts with "---", as helm writes them


@dataclass
class Document:
    """One document of a manifest: a mapping, edited in place by the commands."""

    source: str  # the file's path, or "stdin"
    index: int  # 1-based position in its source, counting empty documents
    data: dict[str, Any]
    style: YamlStyle

    def where(self, path: str = "") -> str:
        """The document, and optionally a place in it, for messages: "app.yaml document 2"."""
        return f"{self.source} document {self.index}" + (f", {path}" if path else "")


def describe_value(value: object) -> str:
    """What a value is, in the words of a YAML or JSON user."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__
