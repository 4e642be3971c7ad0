"""Documents read from manifest files, and how each file's YAML is indented."""

from dataclasses import dataclass
from typing import Any


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
