"""Manifests as read: each file's text cut into its documents, each kept with its own text.

A manifest is written back as the concatenation of its parts, so a document the commands do
not change comes out as the bytes it came in as; a changed one carries its new text.
"""

import re
from dataclasses import dataclass, field
from typing import Any

# What ruamel.yaml's scanner takes for a line break (YAML 1.1, section 5.4): CR LF is one.
LINE_BREAK_CHARACTERS = "\r\n\x85\u2028\u2029"
LINE_BREAK = re.compile(f"\r\n|[{LINE_BREAK_CHARACTERS}]")


@dataclass(frozen=True)
class YamlStyle:
    """How a document indents, so that what is added looks like what is around it."""

    mapping_indent: int = 2
    sequence_offset: int = 0  # spaces before a block sequence's dash, relative to its key


@dataclass(frozen=True)
class Changed:
    """A document's object and text after a command changed it."""

    data: dict[str, Any]
    text: str


@dataclass
class Document:
    """One document of a manifest: a mapping, and the text it was read from."""

    source: str  # the file's path, or "stdin"
    index: int  # 1-based position in its source, counting empty documents
    data: dict[str, Any]  # as read: round-trip YAML types, or plain JSON
    text: str  # from its "---" line, if any, up to the next document's
    first_line: int  # the 0-based line of `text` in its source
    is_json: bool
    style: YamlStyle
    changed: Changed | None = None

    def where(self, path: str = "") -> str:
        """The document, and optionally a place in it, for messages: "app.yaml document 2"."""
        return f"{self.source} document {self.index}" + (f", {path}" if path else "")

    @property
    def line_break(self) -> str:
        """The line break its text uses (the first one in it), for the lines added to it."""
        found = LINE_BREAK.search(self.text)
        return found.group() if found else "\n"

    @property
    def output_data(self) -> dict[str, Any]:
        return self.changed.data if self.changed else self.data

    @property
    def output_text(self) -> str:
        return self.changed.text if self.changed else self.text


@dataclass
class Manifest:
    """A file (or stdin): its documents, and the text around them, in order."""

    source: str
    byte_order_mark: bool  # the file started with a UTF-8 byte order mark
    parts: list[Document | str] = field(default_factory=list)  # str: text without a document

    @property
    def documents(self) -> list[Document]:
        return [part for part in self.parts if isinstance(part, Document)]

    def output_text(self) -> str:
        return "".join(part if isinstance(part, str) else part.output_text for part in self.parts)


def split_lines(text: str) -> list[str]:
    """The lines of a YAML text, each with its line break, cut where a YAML reader cuts them."""
    lines = []
    start = 0
    for found in LINE_BREAK.finditer(text):
        lines.append(text[start : found.end()])
        start = found.end()
    if start < len(text):
        lines.append(text[start:])
    return lines
