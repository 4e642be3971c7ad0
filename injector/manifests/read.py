"""Reading manifests: files, directories and stdin, each YAML (multi-document) or JSON.

YAML is read in round-trip mode, so that comments, key order and quoting survive a rewrite.
Empty documents (a stray `---`) are skipped, as kubectl skips them.
"""

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from injector.errors import ManifestError, describe_value
from injector.manifests.documents import Document, YamlStyle

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
_YAML_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # YAML 1.2 b-break: U+2028 and the like are content
_KEY_ONLY = re.compile(r"^[ -]*[^#\s][^#]*:\s*(#.*)?$")  # "key:" whose value is on the next lines


def read_documents(names: list[str], stdin: BinaryIO | None = None) -> list[Document]:
    """The documents of every file named, in order; "-" is stdin, a directory its manifests."""
    documents: list[Document] = []
    for source, content in _contents(names, stdin or sys.stdin.buffer):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ManifestError(f"{source}: not UTF-8 text") from None
        documents.extend(parse_documents(source, text))
    return documents


def _contents(names: list[str], stdin: BinaryIO) -> Iterator[tuple[str, bytes]]:
    for name in names:
        if name == STDIN:
            yield "stdin", stdin.read()
            continue
        for file in _files(Path(name)):
            try:
                yield str(file), file.read_bytes()
            except OSError as error:
                raise ManifestError(f"{file}: cannot be read: {error.strerror}") from None


def _files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    try:
        return sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES and p.is_file())
    except OSError as error:
        raise ManifestError(f"{path}: cannot be read: {error.strerror}") from None


def parse_documents(source: str, text: str) -> list[Document]:
    if text.lstrip().startswith(("{", "[")):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # YAML, then, written in flow style (or JSON that YAML will say is broken)
        else:
            return [Document(source, 1, _mapping(source, 1, data), YamlStyle())]
    style = guess_style(text)
    documents = []
    index = 0
    try:
        for index, data in enumerate(_yaml_reader().load_all(text), start=1):
            if data is not None:
                documents.append(Document(source, index, _mapping(source, index, data), style))
    except MarkedYAMLError as error:
        raise ManifestError(
            f"{source} document {index + 1}: not valid YAML: {_yaml_problem(error)}"
        ) from None
    except YAMLError as error:
        raise ManifestError(f"{source} document {index + 1}: not valid YAML: {error}") from None
    return documents


def _yaml_problem(error: MarkedYAMLError) -> str:
    """The problem and where, and what was being read; not the text around it."""
    parts = []
    for what, mark in ((error.problem, error.problem_mark), (error.context, error.context_mark)):
        if what:
            parts.append(
                f"{what} at line {mark.line + 1}, column {mark.column + 1}" if mark else what
            )
    return ", ".join(parts) or "unreadable"


def _mapping(source: str, index: int, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ManifestError(
            f"{source} document {index}: expected a Kubernetes object (a mapping), "
            f"found {describe_value(data)}"
        )
    return data


def _yaml_reader() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    return yaml


def guess_style(text: str) -> YamlStyle:
    """The indentation of the first nested mapping and block sequence, and a leading "---"."""
    mapping_indent: int | None = None
    sequence_offset: int | None = None
    explicit_start: bool | None = None
    parent: int | None = None  # the column of the previous line's key, if its value follows
    for line in _YAML_LINE_BREAK.split(text):
        content = line.lstrip(" ")
        if not content or content.startswith("#"):
            continue
        if explicit_start is None:
            explicit_start = line.rstrip() == "---" or line.startswith("--- ")
        column = len(line) - len(content)
        if parent is not None:
            if content.startswith("- "):
                sequence_offset = column - parent if sequence_offset is None else sequence_offset
            elif column > parent and mapping_indent is None:
                mapping_indent = column - parent
        parent = len(line) - len(line.lstrip(" -")) if _KEY_ONLY.match(line) else None
        if mapping_indent is not None and sequence_offset is not None:
            break
    return YamlStyle(mapping_indent or 2, max(sequence_offset or 0, 0), bool(explicit_start))
