"""Editing a document's text so that it reads as a changed object, and touching nothing else.

`add` writes into the text what the object gained (mapping entries and sequence items, at the
places the changed object has them); `remove` cuts out what it lost. Comments, quoting, flow
style, spacing, indentation, line breaks and everything else the change does not reach stay as
written. Into a block collection, text is added as whole lines indented like their siblings
(YAML, its strings quoted where a YAML 1.1 reader would misread them); into a flow collection
(`{...}`, `[...]`, a JSON document) as JSON, on one line, or one item per line where the
collection is laid out so. `remove` cuts exactly what `add` inserts, so that a removal of what
was added gives the original text back.

Either raises `CannotEdit`, saying why, for text it cannot edit in place: a change inside
something shared through a YAML anchor, a merge key (`<<`), a change that is not purely an
addition (or removal), or a layout it does not know. Its callers check that the edited text
reads as the changed object.
"""

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from injector.kube.yaml import kubectl_reader, yaml_writer
from injector.manifests.documents import LINE_BREAK, LINE_BREAK_CHARACTERS, Document, YamlStyle
from injector.manifests.write import rewritten_text, to_plain, with_block_strings

_BLANK = " \t"


class CannotEdit(Exception):
    """The text cannot be edited in place; the message says why."""


@dataclass(frozen=True)
class Added:
    text: str
    nulls: tuple[str, ...]  # where an explicit null became a mapping or list ("a.b")


@dataclass(frozen=True)
class Rewrite:
    """A changed document's object and text, and what could not be kept of its text."""

    data: dict[str, Any]
    text: str
    written_anew: str | None  # why the text could not be edited in place, if it could not
    nulls: tuple[str, ...] = ()  # where an explicit null became a mapping or list


def rewrite(document: Document, target: dict[str, Any], *, adding: bool) -> Rewrite:
    """The document's text changed to hold `target`: what it gained written in (`adding`),
    or what it lost cut out; else, saying why, the object written anew. The edited text is
    read back and must hold `target` (and, for a JSON document, still be JSON)."""
    try:
        nulls: tuple[str, ...] = ()
        if adding:
            added = add(document.text, target, document.style, document.line_break)
            text, nulls = added.text, added.nulls
        else:
            text = remove(document.text, target, document.line_break)
        data = orjson.loads(text) if document.is_json else parse(text)[1]
        if data != to_plain(target):
            raise CannotEdit("the edited text does not read as the changed object")
    except (CannotEdit, orjson.JSONDecodeError) as error:
        return Rewrite(target, rewritten_text(document, target), str(error))
    return Rewrite(target, text, None, nulls)


def add(text: str, target: Any, style: YamlStyle, line_break: str) -> Added:
    """The text with what `target` has beyond the object the text holds written in."""
    editor = _Editor(text, line_break, style)
    editor.walk(adding=True, target=target)
    return Added(editor.result(), tuple(editor.nulls))


def remove(text: str, target: Any, line_break: str) -> str:
    """The text without what the object it holds has beyond `target`."""
    editor = _Editor(text, line_break, YamlStyle())
    editor.walk(adding=False, target=target)
    return editor.result()


def parse(text: str) -> tuple[Node | None, Any]:
    """The one document in the text, as YAML nodes (with their places) and as plain data, as
    kubectl reads it."""
    yaml = kubectl_reader()
    try:
        node = yaml.compose(text)
        return node, to_plain(yaml.constructor.construct_document(node)) if node else None
    except YAMLError as error:
        raise CannotEdit(f"the text does not read as YAML ({error})") from None


@dataclass
class _Edit:
    start: int
    end: int
    text: str
    depth: int  # of the collection edited: at one place, deeper text comes first


@dataclass
class _Editor:
    text: str
    line_break: str
    style: YamlStyle
    edits: list[_Edit] = field(default_factory=list)
    nulls: list[str] = field(default_factory=list)
    # A text without a final line break gets one while it is edited, so that lines can be
    # added after its last line and cut from it like from any other.
    final_break_added: bool = False
    references: dict[int, int] = field(default_factory=dict)  # node id: times it is reached

    def __post_init__(self) -> None:
        if not self.text or self.text[-1] not in LINE_BREAK_CHARACTERS:
            self.text += self.line_break
            self.final_break_added = True

    def walk(self, *, adding: bool, target: Any) -> None:
        node, data = parse(self.text)
        if node is None:
            raise CannotEdit("the document is empty")
        _count_references(node, self.references)
        self._value(node, data, to_plain(target), "", adding, depth=0)

    def result(self) -> str:
        text = self.text
        previous_start = len(text) + 1
        for edit in sorted(self.edits, key=lambda e: (e.start, -e.depth, e.end), reverse=True):
            if edit.end > previous_start:
                raise CannotEdit("two changes meet at one place in the text")
            text = text[: edit.start] + edit.text + text[edit.end :]
            previous_start = edit.start
        if self.final_break_added:
            if not text.endswith(self.line_break):
                raise CannotEdit("the end of the text changed")
            text = text[: -len(self.line_break)]
        return text

    # Walking the nodes beside the data they hold and the data they should hold.

    def _value(
        self,
        node: Node,
        old: Any,
        new: Any,
        where: str,
        adding: bool,
        depth: int,
        key: Node | None = None,
    ) -> None:
        """Edits the text of `node`, which holds `old`, to hold `new`; `key` is the node of
        the key whose value it is, if it is a mapping's value."""
        if old == new:
            return
        if self.references.get(id(node), 0) > 1:
            raise CannotEdit(f"{where or 'the object'} is shared through a YAML anchor")
        if isinstance(node, MappingNode) and isinstance(old, dict) and isinstance(new, dict):
            self._mapping(_MappingEntries(self, node, depth, key), old, new, where, adding)
        elif isinstance(node, SequenceNode) and isinstance(old, list) and isinstance(new, list):
            self._sequence(_SequenceItems(self, node, depth, key), old, new, where, adding)
        else:
            raise CannotEdit(f"{where or 'the object'} changes otherwise than by additions")

    def _mapping(
        self, entries: "_MappingEntries", old: dict, new: dict, where: str, adding: bool
    ) -> None:
        node, depth = entries.node, entries.depth
        if len(node.value) != len(old) or any(_is_merge(key) for key, _ in node.value):
            raise CannotEdit(f"{where or 'the object'} uses a merge key (<<)")
        keys = list(old)
        small, large = (old, new) if adding else (new, old)
        if not all(key in large for key in small):
            raise CannotEdit(f"{where or 'the object'} changes otherwise than by additions")
        order = [key for key in large if key in small]
        if order != list(small):
            raise CannotEdit(f"{where or 'the object'} has its keys in another order")
        for position, key in enumerate(keys):
            if key in new:
                entry_key, value = node.value[position]
                path = f"{where}.{key}" if where else str(key)
                if adding and old[key] is None and isinstance(new[key], dict | list):
                    self._replace_null(entry_key, value, new[key], path, depth + 1)
                else:
                    self._value(value, old[key], new[key], path, adding, depth + 1, entry_key)
        if adding:
            for before, run in _runs(list(new), old):
                self._insert(entries, [(key, new[key]) for key in run], before)
        else:
            self._cut(entries, [i for i, key in enumerate(keys) if key not in new])

    def _sequence(
        self, items: "_SequenceItems", old: list, new: list, where: str, adding: bool
    ) -> None:
        node, depth = items.node, items.depth
        if len(node.value) != len(old):
            raise CannotEdit(f"{where or 'the object'} cannot be read item by item")
        small, large = (old, new) if adding else (new, old)
        matches = _align(small, large)
        if matches is None:
            raise CannotEdit(f"{where} changes otherwise than by additions")
        for small_index, large_index in enumerate(matches):
            old_index = small_index if adding else large_index
            new_index = large_index if adding else small_index
            self._value(
                node.value[old_index],
                old[old_index],
                new[new_index],
                f"{where}[{old_index}]",
                adding,
                depth + 1,
            )
        if adding:
            kept = set(matches)
            position = 0
            run: list[Any] = []
            for index, item in enumerate(new):
                if index in kept:
                    if run:
                        self._insert(items, run, position)
                        run = []
                    position += 1
                else:
                    run.append(item)
            if run:
                self._insert(items, run, None)
        else:
            kept = set(matches)
            self._cut(items, [i for i in range(len(old)) if i not in kept])

    def _replace_null(self, key: Node, value: Node, new: Any, where: str, depth: int) -> None:
        """An explicit null (`null`, `~` or nothing) that becomes a mapping or list: JSON."""
        if not isinstance(value, ScalarNode):
            raise CannotEdit(f"{where} changes otherwise than by additions")
        self.nulls.append(where)
        if value.value == "" and value.start_mark.index == value.end_mark.index:
            colon = self._colon_after(key)
            self.edits.append(_Edit(colon + 1, colon + 1, " " + _json(new), depth))
        else:
            span = (value.start_mark.index, value.end_mark.index)
            self.edits.append(_Edit(*span, _json(new), depth))

    # Adding and cutting entries or items.

    def _insert(self, collection: "_Collection", values: list[Any], before: int | None) -> None:
        if collection.node.flow_style:
            self._insert_flow(collection, values, before)
        else:
            self._insert_block(collection, values, before)

    def _insert_block(
        self, collection: "_Collection", values: list[Any], before: int | None
    ) -> None:
        lines: list[str] = []
        for value in values:
            lines += collection.block_lines(value)
        text = "".join(line + self.line_break for line in lines)
        if before is not None:
            start = self._line_start(collection.start(before))
            if collection.line_prefix_is_indentation(before):
                self.edits.append(_Edit(start, start, text, collection.depth))
                return
        position = self._next_line(collection.end(len(collection) - 1))
        self.edits.append(_Edit(position, position, text, collection.depth))

    def _insert_flow(
        self, collection: "_Collection", values: list[Any], before: int | None
    ) -> None:
        count = len(collection)
        if count == 0:
            opening = collection.node.start_mark.index + 1
            text = ", ".join(collection.flow_text(value, None) for value in values)
            self.edits.append(_Edit(opening, opening, text, collection.depth))
            return
        neighbour = before if before is not None else count - 1
        indent = self._own_line_indent(collection, neighbour)
        separator = "," + self.line_break + indent if indent is not None else ", "
        text = separator.join(collection.flow_text(value, indent) for value in values)
        if before is not None:
            start = collection.start(before)
            self.edits.append(_Edit(start, start, text + separator, collection.depth))
        else:
            end = collection.end(count - 1)
            self.edits.append(_Edit(end, end, separator + text, collection.depth))

    def _cut(self, collection: "_Collection", indices: list[int]) -> None:
        if not indices:
            return
        if collection.node.flow_style:
            count = len(collection)
            for first, last in _consecutive(indices):
                if last < count - 1:
                    span = (collection.start(first), collection.start(last + 1))
                elif first > 0:
                    span = (collection.end(first - 1), collection.end(last))
                else:
                    span = (collection.start(first), collection.end(last))
                self.edits.append(_Edit(*span, "", collection.depth))
            return
        if len(indices) == len(collection):  # what is left must read as {} or [], not null
            if collection.key is None:
                raise CannotEdit("a block collection would be left empty")
            colon = self._colon_after(collection.key)
            empty = " {}" if isinstance(collection.node, MappingNode) else " []"
            self.edits.append(_Edit(colon + 1, colon + 1, empty, collection.depth))
        for index in indices:
            if not collection.line_prefix_is_indentation(index):
                raise CannotEdit("an entry to remove shares its line with another")
            start = self._line_start(collection.start(index))
            end = self._next_line(collection.end(index))
            self.edits.append(_Edit(start, end, "", collection.depth))

    # Places in the text.

    def _line_start(self, position: int) -> int:
        while position > 0 and self.text[position - 1] not in LINE_BREAK_CHARACTERS:
            position -= 1
        return position

    def _next_line(self, position: int) -> int:
        """The start of the next line, where only blanks or a comment follow `position`."""
        found = LINE_BREAK.search(self.text, position)
        end = found.start() if found else len(self.text)
        rest = self.text[position:end].strip(_BLANK)
        if rest and not rest.startswith("#"):
            raise CannotEdit("a line holds more than one entry")
        return found.end() if found else len(self.text)

    def _next_line_break(self, node: Node) -> int:
        found = LINE_BREAK.search(self.text, node.start_mark.index)
        return found.start() if found else len(self.text)

    def _own_line_indent(self, collection: "_Collection", index: int) -> str | None:
        """The indentation of an item alone at the start of its line, in a flow collection
        laid out one item per line; None for one laid out on one line."""
        start = collection.start(index)
        line_start = self._line_start(start)
        prefix = self.text[line_start:start]
        if line_start <= collection.node.start_mark.index or prefix.strip(_BLANK):
            return None
        return prefix

    def _colon_after(self, key: Node) -> int:
        position = key.end_mark.index
        while position < len(self.text) and self.text[position] in _BLANK:
            position += 1
        if not self.text.startswith(":", position):
            raise CannotEdit("a key is not followed by its colon")
        return position

    def content_end(self, node: Node) -> int:
        """Where a node's own text ends: not the comments or blank lines after it."""
        if isinstance(node, ScalarNode):
            if node.value == "" and node.style is None:
                raise CannotEdit("an empty value has no place of its own in the text")
            end = node.end_mark.index
            if node.style not in ("|", ">"):
                return end
            # A block scalar's end takes in the blank lines after it: they are its own with
            # the keep indicator (`|+`), so its text ends before the last line break.
            header = self.text[node.start_mark.index : self._next_line_break(node)]
            if "+" in header.split("#", 1)[0]:
                if self.text.startswith("\r\n", end - 2):
                    return end - 2
                return end - 1 if self.text[end - 1] in LINE_BREAK_CHARACTERS else end
            while end > node.start_mark.index and self.text[end - 1] in (
                _BLANK + LINE_BREAK_CHARACTERS
            ):
                end -= 1
            return end
        if node.flow_style:
            return node.end_mark.index
        if not node.value:
            raise CannotEdit("an empty block collection")
        if isinstance(node, MappingNode):
            key, value = node.value[-1]
            return self.entry_end(key, value)
        return self.content_end(node.value[-1])

    def entry_end(self, key: Node, value: Node) -> int:
        if isinstance(value, ScalarNode) and value.value == "" and value.style is None:
            return self._colon_after(key) + 1
        return self.content_end(value)


class _Collection:
    """The entries or items of a mapping or sequence node, with their places in the text."""

    def __init__(self, editor: _Editor, node: Node, depth: int, key: Node | None):
        self.editor = editor
        self.node = node
        self.depth = depth
        self.key = key  # the node of the key whose value this is, if any

    def __len__(self) -> int:
        return len(self.node.value)

    def start(self, index: int) -> int:
        raise NotImplementedError

    def end(self, index: int) -> int:
        raise NotImplementedError

    def block_lines(self, value: Any) -> list[str]:
        raise NotImplementedError

    def flow_text(self, value: Any, indent: str | None) -> str:
        raise NotImplementedError

    def line_prefix_is_indentation(self, index: int) -> bool:
        raise NotImplementedError

    def _column(self, position: int) -> int:
        return position - self.editor._line_start(position)

    def _pretty_json(self, value: Any, indent: str | None) -> str:
        """JSON for a flow collection laid out one item per line (at `indent`), or on one."""
        if indent is None or not isinstance(value, dict | list) or not value:
            return _json(value)
        opening = self.node.start_mark.index
        line = self.editor.text[self.editor._line_start(opening) : opening]
        outer = line[: len(line) - len(line.lstrip(_BLANK))]
        step = indent[len(outer) :] if indent.startswith(outer) and indent != outer else "  "
        text = json.dumps(value, ensure_ascii=True, indent=step)
        return (self.editor.line_break + indent).join(text.split("\n"))


class _MappingEntries(_Collection):
    def start(self, index: int) -> int:
        return self.node.value[index][0].start_mark.index

    def end(self, index: int) -> int:
        return self.editor.entry_end(*self.node.value[index])

    def line_prefix_is_indentation(self, index: int) -> bool:
        start = self.start(index)
        return not self.editor.text[self.editor._line_start(start) : start].strip(" ")

    def block_lines(self, value: Any) -> list[str]:
        key, item = value
        column = self._column(self.start(0)) if len(self) else 0
        lines = _render_block({key: item}, self.editor.style)
        return [" " * column + line if line else line for line in lines]

    def flow_text(self, value: Any, indent: str | None) -> str:
        key, item = value
        return f"{_json(key)}: {self._pretty_json(item, indent)}"


class _SequenceItems(_Collection):
    def start(self, index: int) -> int:
        return self.node.value[index].start_mark.index

    def end(self, index: int) -> int:
        return self.editor.content_end(self.node.value[index])

    def line_prefix_is_indentation(self, index: int) -> bool:
        """Whether only indentation and the item's dash precede it on its line."""
        try:
            self._dash_prefix(index)
        except CannotEdit:
            return False
        return True

    def _dash_prefix(self, index: int) -> str:
        """The text before a block sequence item on its line: indentation, dash, blanks."""
        item = self.node.value[index].start_mark.index
        prefix = self.editor.text[self.editor._line_start(item) : item]
        indentation = prefix.lstrip(" ")
        if not indentation.startswith("-") or indentation[1:].strip(_BLANK) or len(indentation) < 2:
            raise CannotEdit("a sequence item does not start on its dash's line")
        return prefix

    def block_lines(self, value: Any) -> list[str]:
        dash = self._dash_prefix(0)
        lines = _render_block([value], self.editor.style)
        # The rendering puts the dash at the style's offset and the item two columns further.
        cut = self.editor.style.sequence_offset + 2
        first, *rest = (line[cut:] for line in lines)
        return [dash + first, *(" " * len(dash) + line if line else line for line in rest)]

    def flow_text(self, value: Any, indent: str | None) -> str:
        return self._pretty_json(value, indent)


def _render_block(value: Any, style: YamlStyle) -> list[str]:
    """Block YAML for a mapping or a one-item list, from column 0, as lines without breaks."""
    out = io.StringIO()
    writer = yaml_writer(mapping_indent=style.mapping_indent, sequence_offset=style.sequence_offset)
    writer.dump(with_block_strings(value), out)
    return out.getvalue()[:-1].split("\n")  # the writer ends every line with "\n"


def _json(value: Any) -> str:
    """JSON, which YAML 1.1 and 1.2 readers read as JSON does; only ASCII, so that no
    character a YAML reader takes for a line break (U+2028…) is written raw."""
    return json.dumps(value, ensure_ascii=True, separators=(", ", ": "))


def _is_merge(key: Node) -> bool:
    return key.tag == "tag:yaml.org,2002:merge"


def _count_references(node: Node, counts: dict[int, int]) -> None:
    counts[id(node)] = counts.get(id(node), 0) + 1
    if counts[id(node)] > 1:
        return  # an alias: its children are counted once, at the anchor
    if isinstance(node, MappingNode):
        for key, value in node.value:
            _count_references(key, counts)
            _count_references(value, counts)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _count_references(item, counts)


def _runs(order: list[Any], existing: dict) -> Iterator[tuple[int | None, list[Any]]]:
    """The new keys of `order`, in runs, each with the index of the existing key it precedes
    (None: after the last)."""
    positions = {key: index for index, key in enumerate(existing)}
    run: list[Any] = []
    for key in order:
        if key in positions:
            if run:
                yield positions[key], run
                run = []
        else:
            run.append(key)
    if run:
        yield None, run


def _align(small: list, large: list) -> list[int] | None:
    """For each item of `small`, the index of the item of `large` it is (or grew into),
    keeping their order; None when `small` is not `large` with items added."""
    for grown in (_equal, _grew):
        matches: list[int] = []
        index = 0
        for item in small:
            while index < len(large) and not grown(item, large[index]):
                index += 1
            if index == len(large):
                break
            matches.append(index)
            index += 1
        else:
            return matches
    return None


def _equal(old: Any, new: Any) -> bool:
    return bool(old == new)


def _grew(old: Any, new: Any) -> bool:
    """Whether `new` is `old` with entries or items added, at any depth."""
    if isinstance(old, dict) and isinstance(new, dict):
        return all(key in new and _grew(value, new[key]) for key, value in old.items())
    if isinstance(old, list) and isinstance(new, list):
        return _align(old, new) is not None
    return bool(old == new)


def _consecutive(indices: list[int]) -> Iterator[tuple[int, int]]:
    """Runs of consecutive indices, as (first, last)."""
    first = previous = indices[0]
    for index in indices[1:]:
        if index != previous + 1:
            yield first, previous
            first = index
        previous = index
    yield first, previous
