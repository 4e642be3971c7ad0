"""Writing manifests: YAML as the text each document was read from (or its new text), or JSON."""

import io
from collections.abc import Sequence
from typing import Any

import orjson
from ruamel.yaml.scalarstring import LiteralScalarString

from injector.kube.yaml import YAML_1_1_LINE_BREAKS, kubectl_json, yaml_writer
from injector.manifests.documents import LINE_BREAK_CHARACTERS, Document, Manifest

BYTE_ORDER_MARK = "\ufeff"
DOCUMENT_START = "---"


def yaml_stream(manifests: Sequence[Manifest]) -> str:
    """The manifests as one YAML stream: each file's text with only its changed documents'
    text replaced. A file that does not start a document of its own gets a `---` line first;
    a byte order mark is kept at the start of the stream only."""
    out: list[str] = []
    for manifest in manifests:
        text = manifest.output_text()
        if out:
            if out[-1] and out[-1][-1] not in LINE_BREAK_CHARACTERS:
                out.append("\n")
            if not text.startswith(DOCUMENT_START):
                out.append(DOCUMENT_START + "\n")
        elif manifest.byte_order_mark:
            out.append(BYTE_ORDER_MARK)
        out.append(text)
    return "".join(out)


def json_stream(documents: Sequence[Document]) -> str:
    """One object as itself, any other number as a v1 List (as `kubectl get -o json` prints
    them), indented by two spaces, with a final line break."""
    if len(documents) == 1:
        data: Any = documents[0].output_data
    else:
        items = [d.output_data for d in documents]
        data = {"apiVersion": "v1", "kind": "List", "items": items}
    return to_json(data, indent=True).decode() + "\n"


def rewritten_text(document: Document, data: dict[str, Any]) -> str:
    """A document's object written anew: JSON for a JSON document, else YAML in the
    document's indentation (with the comments ruamel.yaml kept with the data), after a
    `---` line when the document had one, with the document's line breaks."""
    if document.is_json:
        return to_json(data, indent=True).decode() + "\n"
    out = io.StringIO()
    if document.text.startswith(DOCUMENT_START):
        out.write(DOCUMENT_START + "\n")
    style = document.style
    writer = yaml_writer(mapping_indent=style.mapping_indent, sequence_offset=style.sequence_offset)
    writer.dump(data, out)
    return out.getvalue().replace("\n", document.line_break)


def to_json(value: Any, *, indent: bool = False) -> bytes:
    """JSON for data read from YAML or JSON, as kubectl would send it (see `to_plain`)."""
    return orjson.dumps(to_plain(value), option=orjson.OPT_INDENT_2 if indent else 0)


def to_plain(value: Any) -> Any:
    """The same data as plain JSON types, as kubectl sends it and so as the API server would
    send it to the webhook: keys are strings, `2.0` is 2 (`injector.kube.yaml.kubectl_json`).
    """
    return kubectl_json(value)


def with_block_strings(value: Any) -> Any:
    """A copy in which multi-line strings are YAML literal blocks, to be read line by line."""
    if isinstance(value, dict):
        return {key: with_block_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_block_strings(item) for item in value]
    if isinstance(value, str) and "\n" in value and not YAML_1_1_LINE_BREAKS.intersection(value):
        return LiteralScalarString(value)
    return value
