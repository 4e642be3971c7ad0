"""Reading manifests: files, directories and stdin, each YAML (multi-document) or JSON.

A YAML stream is cut into its documents where the YAML specification cuts it (a `---` line
starts a document, a `...` line ends one), and each document keeps its text, so that it can be
written back as it was. Each is read in round-trip mode (comments, key order and quoting kept)
and as kubectl reads it: its scalars resolved as go-yaml v2 resolves them (`off` and `y` are
booleans, `0644` is 420, `1:20` a string; see `injector.kube.yaml`). A document kubectl could
not send as JSON (an infinity, a null key) is an error. Empty documents (a stray `---`) are
counted but hold nothing, as kubectl skips them.
"""

import codecs
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from injector.errors import ManifestError, describe_value
from injector.kube.yaml import NotJson, kubectl_json, kubectl_reader
from injector.manifests.documents import (
    LINE_BREAK_CHARACTERS,
    Document,
    Manifest,
    YamlStyle,
    split_lines,
)

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
_KEY_ONLY = re.compile(r"^[ -]*[^#\s][^#]*:\s*(#.*)?$")  # "key:" whose value is on the next lines
_DOCUMENT_START = re.compile(r"---(?:[ \t]|$)")  # YAML 1.2, 9.1.4: c-directives-end
_DOCUMENT_END = re.compile(r"\.\.\.(?:[ \t]|$)")  # c-document-end
_NOTHING = re.compile(r"[ \t]*(?:#.*)?$")  # a blank or comment line


def read_manifests(
    names: list[str], *, recursive: bool = False, stdin: BinaryIO | None = None
) -> list[Manifest]:
    """Every file named, in order: "-" is stdin; a directory gives its *.yaml, *.yml and
    *.json files sorted by name (and, with `recursive`, those of its subdirectories, in the
    order kubectl walks them). ManifestError names a file that cannot be read or parsed."""
    return [
        parse_manifest(source, content)
        for source, content in _contents(names, recursive, stdin or sys.stdin.buffer)
    ]


def _contents(names: list[str], recursive: bool, stdin: BinaryIO) -> Iterator[tuple[str, bytes]]:
    for name in names:
        if name == STDIN:
            yield "stdin", stdin.read()
            continue
        for file in _files(Path(name), recursive):
            try:
                yield str(file), file.read_bytes()
            except OSError as error:
                raise ManifestError(f"{file}: cannot be read: {error.strerror}") from None


def _files(path: Path, recursive: bool) -> Iterator[Path]:
    """A named file whatever its suffix; a directory's manifests, in lexical order, and with
    `recursive` its subdirectories' (not those reached through a symbolic link), as kubectl's
    filepath.Walk finds them."""
    if not path.is_dir():
        yield path
        return
    try:
        entries = sorted(path.iterdir())
    except OSError as error:
        raise ManifestError(f"{path}: cannot be read: {error.strerror}") from None
    for entry in entries:
        if entry.is_dir():
            if recursive and not entry.is_symlink():
                yield from _files(entry, recursive)
        elif entry.suffix in MANIFEST_SUFFIXES and entry.is_file():
            yield entry


def parse_manifest(source: str, content: bytes) -> Manifest:
    """The documents of one file's bytes, each with its text; JSON is one document."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(f"{source}: not UTF-8 text") from None
    manifest = Manifest(source, content.startswith(codecs.BOM_UTF8))
    if text.lstrip().startswith(("{", "[")):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # YAML, then, written in flow style (or JSON that YAML will say is broken)
        else:
            data = _mapping(source, 1, data)
            manifest.parts.append(Document(source, 1, data, text, 0, True, guess_style(text)))
            return manifest
    index = 0
    for chunk, first_line in split_documents(text):
        data = _load(source, index + 1, chunk, first_line)
        if data is _NO_DOCUMENT:
            manifest.parts.append(chunk)
            continue
        index += 1
        if data is None:
            manifest.parts.append(chunk)  # an empty document
            continue
        data = _mapping(source, index, data)
        manifest.parts.append(
            Document(source, index, data, chunk, first_line, False, guess_style(chunk))
        )
    return manifest


def reread(document: Document, text: str) -> Document:
    """The document as read from another text (its new one), in the same place."""
    if document.is_json:
        data = _mapping(document.source, document.index, orjson.loads(text))
    else:
        data = _mapping(
            document.source,
            document.index,
            _load(document.source, document.index, text, document.first_line),
        )
    return Document(
        document.source,
        document.index,
        data,
        text,
        document.first_line,
        document.is_json,
        document.style,
    )


def split_documents(text: str) -> list[tuple[str, int]]:
    """The text cut before every `---` line and after every `...` line, each piece with its
    first line (0-based); joined, the pieces are the text. Each piece holds at most one
    document; directives (`%YAML`, `%TAG`) stay with the document they precede."""
    pieces: list[tuple[list[str], int]] = [([], 0)]
    for number, line in enumerate(split_lines(text)):
        content = line.rstrip(LINE_BREAK_CHARACTERS)
        if _DOCUMENT_START.match(content) and not _only_directives(pieces[-1][0]):
            pieces.append(([], number))
        pieces[-1][0].append(line)
        if _DOCUMENT_END.match(content):
            pieces.append(([], number + 1))
    return [("".join(lines), first) for lines, first in pieces if lines]


def _only_directives(lines: list[str]) -> bool:
    """Directives, with perhaps comments and blank lines: the start of the next document."""
    directives = [line.startswith("%") for line in lines]
    return any(directives) and all(
        directive or _NOTHING.match(line.rstrip(LINE_BREAK_CHARACTERS))
        for directive, line in zip(directives, lines, strict=True)
    )


_NO_DOCUMENT = object()


def _load(source: str, index: int, chunk: str, first_line: int) -> Any:
    """The one document in a piece of the stream; _NO_DOCUMENT when it holds only comments."""
    try:
        documents = list(kubectl_reader().load_all(chunk))
    except MarkedYAMLError as error:
        problem = _yaml_problem(error, first_line)
        raise ManifestError(f"{source} document {index}: not valid YAML: {problem}") from None
    except YAMLError as error:
        raise ManifestError(f"{source} document {index}: not valid YAML: {error}") from None
    if not documents:
        return _NO_DOCUMENT
    if len(documents) > 1:  # the cut follows the YAML specification, so this cannot happen
        raise ManifestError(f"{source} document {index}: cannot be told from the next one")
    return documents[0]


def _yaml_problem(error: MarkedYAMLError, first_line: int) -> str:
    """The problem and where in the file, and what was being read; not the text around it."""
    parts = []
    for what, mark in ((error.problem, error.problem_mark), (error.context, error.context_mark)):
        if what:
            parts.append(
                f"{what} at line {first_line + mark.line + 1}, column {mark.column + 1}"
                if mark
                else what
            )
    return ", ".join(parts) or "unreadable"


def _mapping(source: str, index: int, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ManifestError(
            f"{source} document {index}: expected a Kubernetes object (a mapping), "
            f"found {describe_value(data)}"
        )
    try:
        kubectl_json(data)
    except NotJson as error:
        raise ManifestError(
            f"{source} document {index}: kubectl cannot send it as JSON: {error}"
        ) from None
    return data


def guess_style(text: str) -> YamlStyle:
    """The indentation of the first nested mapping and block sequence."""
    mapping_indent: int | None = None
    sequence_offset: int | None = None
    parent: int | None = None  # the column of the previous line's key, if its value follows
    for text_line in split_lines(text):
        line = text_line.rstrip(LINE_BREAK_CHARACTERS)
        content = line.lstrip(" ")
        if not content or content.startswith("#"):
            continue
        column = len(line) - len(content)
        if parent is not None:
            if content.startswith("- "):
                sequence_offset = column - parent if sequence_offset is None else sequence_offset
            elif column > parent and mapping_indent is None:
                mapping_indent = column - parent
        parent = len(line) - len(line.lstrip(" -")) if _KEY_ONLY.match(line) else None
        if mapping_indent is not None and sequence_offset is not None:
            break
    return YamlStyle(mapping_indent or 2, max(sequence_offset or 0, 0))
