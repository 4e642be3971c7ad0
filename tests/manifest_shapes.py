"""Manifests written the many ways people and tools write them: a hypothesis strategy that
gives the text of a YAML stream (or a JSON document) and the objects it holds.

The text is written here, by hand, not by a YAML library, so that it has the shapes libraries
normalise away: document markers (leading, trailing, `...`), explicit nulls (`null`, `~`,
nothing), trailing spaces, flow collections with their own spacing, several indentations in one
file, comments on their own lines and after values, literal block scalars (clip, strip, keep),
CR LF line breaks, a byte order mark, a final line break or none. Strings a YAML 1.1 or 1.2
reader, or kubectl's, would read as something else are quoted (so that each reader reads the
objects); a `Plain` scalar is written as its text, whatever a reader makes of it.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml as pyyaml
from hypothesis import strategies as st
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver

STRING_TAG = "tag:yaml.org,2002:str"
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
_YAML_1_2 = VersionedResolver(version=(1, 2))
_YAML_1_1 = pyyaml.resolver.Resolver()
_GO_YAML_BOOLEANS = {"y", "Y", "n", "N"}  # go-yaml v2 (kubectl) reads these as booleans too
# go-yaml v2 reads more as numbers than either (0X1F, 0O17, 1E1_0): what starts with a digit
# and holds only what numbers are written with is never written plain.
_GO_YAML_NUMBER_LIKE = re.compile(r"[0-9][0-9a-fA-FxXoO_.+-]*")


def plain_is_a_string(text: str) -> bool:
    """Whether `text`, written plain, is read as that string by YAML 1.1 and 1.2 readers and
    by kubectl's."""
    return (
        bool(_PLAIN.fullmatch(text))
        and text not in _GO_YAML_BOOLEANS
        and not _GO_YAML_NUMBER_LIKE.fullmatch(text)
        and _YAML_1_1.resolve(pyyaml.ScalarNode, text, (True, False)) == STRING_TAG
        and _YAML_1_2.resolve(ScalarNode, text, (True, False)) == STRING_TAG
    )


@dataclass(frozen=True)
class Plain:
    """A scalar written plain as this text, for a reader to resolve."""

    text: str


@dataclass(frozen=True)
class Stream:
    """A generated manifest: its bytes, and the objects (None for an empty document)."""

    content: bytes
    objects: list[Any]
    is_json: bool


class _Writer:
    """Writes objects as YAML text, drawing each choice of layout."""

    def __init__(self, draw: st.DrawFn):
        self.draw = draw
        self.after_block_scalar = False  # the last line written is a block scalar's

    def choose(self, *options: Any) -> Any:
        return self.draw(st.sampled_from(options))

    def scalar(self, value: Any, flow: bool) -> str:
        if isinstance(value, Plain):
            return value.text
        if value is None:
            return self.choose("null", "~")
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        assert isinstance(value, str)
        styles = ["double"]
        if plain_is_a_string(value):
            styles.append("plain")
        if "\n" not in value and all(" " <= c <= "~" for c in value):
            styles.append("single")
        style = self.choose(*styles)
        if style == "plain":
            return value
        if style == "single":
            return "'" + value.replace("'", "''") + "'"
        return json.dumps(value, ensure_ascii=True)

    def flow(self, value: Any) -> str:
        if not isinstance(value, dict | list):
            return self.scalar(value, flow=True)
        comma = self.choose(", ", ",", ",  ", " , ")
        inner = self.choose("", " ")
        if isinstance(value, dict):
            items = [f"{self.scalar(k, True)}: {self.flow(v)}" for k, v in value.items()]
            opening, closing = "{", "}"
        else:
            items = [self.flow(item) for item in value]
            opening, closing = "[", "]"
        if not items:
            return opening + closing
        return opening + inner + comma.join(items) + inner + closing

    def end_of_line(self) -> str:
        """What may follow a value on its line: spaces, a comment."""
        return self.choose("", "", " ", "   ") + self.choose("", "", "  # note", " #c")

    def comment_lines(self, column: int) -> list[str]:
        if self.after_block_scalar:  # a blank line would be the scalar's own, with `|+`
            return self.choose([], [" " * column + "# about the next"])
        return self.choose([], [], [], [" " * column + "# about the next"], [""])

    def block_scalar(self, text: str, column: int) -> list[str]:
        if text.endswith("\n\n"):
            indicator = "|+"
        elif text.endswith("\n"):
            indicator = "|"
        else:
            indicator = "|-"
        body = text.rstrip("\n").split("\n")
        extra = len(text) - len(text.rstrip("\n")) - 1 if indicator == "|+" else 0
        return [indicator, *(" " * column + line if line else "" for line in body), *[""] * extra]

    def mapping(self, value: dict, column: int) -> list[str]:
        """A block mapping at `column`, as lines."""
        lines: list[str] = []
        for key, item in value.items():
            lines += self.comment_lines(column)
            head = " " * column + self.scalar(key, flow=False) + ":"
            lines += self.value_lines(head, item, column)
        return lines

    def value_lines(self, head: str, item: Any, column: int) -> list[str]:
        """The lines of a mapping entry or sequence item whose first line starts with head."""
        self.after_block_scalar = False
        if item is None:
            return [head + self.choose(" null", " ~", "") + self.end_of_line()]
        if isinstance(item, str) and "\n" in item:
            first, *rest = self.block_scalar(item, column + self.choose(2, 4))
            self.after_block_scalar = True
            return [f"{head} {first}", *rest]
        if not isinstance(item, dict | list) or not item or self.choose(False, False, True):
            return [f"{head} {self.flow(item)}{self.end_of_line()}"]
        if isinstance(item, dict):
            return [head + self.end_of_line(), *self.mapping(item, column + self.choose(2, 3, 4))]
        return [head + self.end_of_line(), *self.sequence(item, column + self.choose(0, 2, 4))]

    def sequence(self, value: list, column: int) -> list[str]:
        """A block sequence whose dashes are at `column`, as lines."""
        lines: list[str] = []
        for item in value:
            lines += self.comment_lines(column)
            dash = " " * column + "-" + " " * self.choose(1, 1, 3)
            if isinstance(item, dict) and item:  # its first key on the dash's line
                inner = self.mapping(item, len(dash))
                first = next(i for i, line in enumerate(inner) if line.strip(" ")[:1] not in "#")
                inner[first] = dash + inner[first][len(dash) :]
                lines += inner
            elif isinstance(item, list):
                lines.append(dash + self.flow(item) + self.end_of_line())
            else:
                lines += self.value_lines(dash.rstrip(" "), item, len(dash))
        return lines


@st.composite
def streams(draw: st.DrawFn, objects: st.SearchStrategy[list[Any]]) -> Stream:
    """A YAML stream of the objects (None: an empty document), or, sometimes, one object
    without `Plain` scalars as a JSON document."""
    chosen = draw(objects)
    line_break = draw(st.sampled_from(["\n", "\r\n"]))
    byte_order_mark = draw(st.booleans())
    non_empty = [obj for obj in chosen if obj is not None]
    if len(non_empty) == 1 and not _holds_plain(non_empty[0]) and draw(st.booleans()):
        indent = draw(st.sampled_from([None, 2, 4]))
        text = json.dumps(non_empty[0], indent=indent) + draw(st.sampled_from(["", "\n"]))
        return Stream(_encode(text, line_break, byte_order_mark), non_empty, True)
    writer = _Writer(draw)
    lines: list[str] = []
    for position, obj in enumerate(chosen):
        if position == 0:
            lines += writer.choose([], ["---"], ["--- # first"], ["# header", "---"])
        else:
            if writer.choose(False, False, True):
                lines += ["...", *writer.choose([], ["%YAML 1.2"])]
            lines += [*writer.comment_lines(0), "---"]
        if obj is not None:
            lines += writer.mapping(obj, 0)
    ending = writer.choose([], [], ["---"], ["# the end"])
    lines += ending
    text = "\n".join(lines)
    if (
        draw(st.booleans())
        or not lines
        or lines[-1] == ""
        or (writer.after_block_scalar and not ending)
    ):
        text += "\n"
    return Stream(_encode(text, line_break, byte_order_mark), chosen, False)


def _holds_plain(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_plain(key) or _holds_plain(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_plain(item) for item in value)
    return isinstance(value, Plain)


def _encode(text: str, line_break: str, byte_order_mark: bool) -> bytes:
    return (b"\xef\xbb\xbf" if byte_order_mark else b"") + text.replace("\n", line_break).encode()
