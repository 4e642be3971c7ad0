"""YAML as kubectl reads it, and YAML that kubectl reads as it was meant.

Reading. kubectl turns a YAML document into the JSON it sends with sigs.k8s.io/yaml's
`YAMLToJSON`: go-yaml v2 decodes the document into Go `interface{}` values, which are then
written as JSON. `kubectl_reader` reads a document to the same values, and `kubectl_json`
gives the JSON kubectl sends for them, so that the manifest commands decide on the object the
API server gets from `kubectl apply`. Where this follows go-yaml v2 (v2.4.0: `resolve.go`,
`decode.go`; kubectl's vendored copy is a fork of it), and why:

- A plain scalar is resolved by its first character, as `resolve` does, not by YAML 1.1's or
  YAML 1.2's regular expressions, which both differ from it (ruamel.yaml's YAML 1.1 resolver
  reads `1:20` as 80 and `2001-12-14` as a date, and `0X1F`, `0o17` or `08` as strings; its
  YAML 1.2 one reads `0644` as 644 and `yes` as a string). In its table: the booleans
  `y Y yes Yes YES true True TRUE on On ON` and `n N no No NO false False FALSE off Off OFF`;
  null (`~`, `null`, `Null`, `NULL`, nothing); `.inf`, `+.inf`, `-.inf` and `.nan`, each
  lower case, capitalised or upper case. Then a scalar that starts with a digit or a sign is,
  with every `_` removed, an integer as Go's `strconv.ParseInt(s, 0, 64)` reads it (decimal,
  `0x`/`0X` hex, `0o`/`0O` or a leading `0` octal, `0b`/`0B` binary: `0644` is 420), else
  as `ParseUint` reads it (up to 2**64 - 1, without a sign), else a float if it matches
  `[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?` and is in range (`08` is 8.0,
  `1e3` is 1000.0, `1e400` stays a string), else, after a `0b` prefix, a signed base-2
  integer (`0b-101` is -5). A scalar that starts with `.` is a float as `ParseFloat` reads
  it (`.5`, `.5_5`). Everything else is a string. Unlike YAML 1.1, go-yaml has no
  sexagesimal numbers (`1:20` is the string "1:20": "base 60 floats ... are purposefully
  unsupported"), and timestamps (`2001-12-14`) are decoded into `interface{}` as the text
  they were written as. The `%YAML` directive changes none of this.
- A scalar tagged `!!int`, `!!float`, `!!bool` or `!!null` is resolved the same way and must
  resolve to its tag (an integer may be a `!!float`); `!!binary` is the text its base64
  holds; any other tag leaves the scalar's text. A quoted scalar is a string. (Not followed:
  the non-specific tag `!`, which makes `! 5` a string to go-yaml, is read as no tag.)
- JSON object keys are strings: sigs.k8s.io/yaml writes a boolean key as `true`/`false`, an
  integer key in decimal and a float key as Go's `strconv.FormatFloat(f, 'g', -1, 32)`
  (`on: x` is `{"true": "x"}`); a null key, an integer key beyond int64, a collection as a
  key, an infinity or NaN (`json: unsupported value`) make kubectl refuse the document.
- Go's `encoding/json` writes a float that is a whole number below 1e21 without a fraction
  (`2.0` is sent as `2`, which the API server takes for an integer); `kubectl_json` gives
  such a number as an integer where one of 64 bits holds it.

Writing. YAML 1.2 writers (ruamel.yaml's included) leave `off`, `on`, `y`, `no`, `0777`,
`1:20`, `~`… plain, which go-yaml and other YAML 1.1 readers read as booleans, numbers and
null. Every string that go-yaml, a YAML 1.1 or a YAML 1.2 reader would resolve to another type
is written double-quoted, as kubectl itself writes them (YAML 1.1:
https://yaml.org/type/bool.html, int, float, null, timestamp, merge, value), and a float is
written with a fraction and a signed exponent, as YAML 1.1 needs it (`1.0e-07`).
"""

import base64
import binascii
import math
import re
import struct
from decimal import Decimal
from typing import Any, TextIO

from ruamel.yaml import YAML
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.nodes import Node, ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tag import Tag

TAG_PREFIX = "tag:yaml.org,2002:"
STRING_TAG = TAG_PREFIX + "str"
BOOLEAN_TAG = TAG_PREFIX + "bool"
INTEGER_TAG = TAG_PREFIX + "int"
FLOAT_TAG = TAG_PREFIX + "float"
NULL_TAG = TAG_PREFIX + "null"
MERGE_TAG = TAG_PREFIX + "merge"
BINARY_TAG = TAG_PREFIX + "binary"
TIMESTAMP_TAG = TAG_PREFIX + "timestamp"
# Line breaks to YAML 1.1 readers only (section 5.4): written raw in a plain, quoted or block
# scalar they would break it; double-quoted, they are escaped.
YAML_1_1_LINE_BREAKS = frozenset("\x85\u2028\u2029")
_YAML_1_1 = VersionedResolver(version=(1, 1))
_YAML_1_2 = VersionedResolver(version=(1, 2))

# go-yaml v2's resolveMap, looked up for scalars starting with one of "yYnNtTfFoO~.+-" (its
# "<<" is only ever looked up as a merge key) or empty.
_TRUE = ["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"]
_FALSE = ["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"]
_RESOLVE_MAP: dict[str, tuple[str, Any]] = {
    **dict.fromkeys(_TRUE, (BOOLEAN_TAG, True)),
    **dict.fromkeys(_FALSE, (BOOLEAN_TAG, False)),
    **dict.fromkeys(["", "~", "null", "Null", "NULL"], (NULL_TAG, None)),
    **dict.fromkeys([".nan", ".NaN", ".NAN"], (FLOAT_TAG, math.nan)),
    **dict.fromkeys([".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"], (FLOAT_TAG, math.inf)),
    **dict.fromkeys(["-.inf", "-.Inf", "-.INF"], (FLOAT_TAG, -math.inf)),
}
_NUMBER_START = frozenset("+-0123456789")
# strconv.ParseInt(s, 0, 64) and ParseUint(s, 0, 64), once go-yaml has removed every "_".
_GO_INTEGER = re.compile(
    r"(?P<sign>[-+]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[bB](?P<binary>[01]+)"
    r"|0[oO]?(?P<octal>[0-7]+)|(?P<decimal>[1-9][0-9]*|0))"
)
_GO_BASES = {"hex": 16, "binary": 2, "octal": 8, "decimal": 10}
_GO_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")  # resolve.go
_GO_BINARY_AFTER_PREFIX = re.compile(r"0b([-+]?[01]+)")  # strconv.ParseInt(s[2:], 2, 64)
# strconv.ParseFloat of a scalar starting with ".": "_" only between digits.
_GO_FLOAT_FROM_DOT = re.compile(r"\.[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+(?:_[0-9]+)*)?")
_INT64 = range(-(2**63), 2**63)
_UINT64_MAX = 2**64 - 1
_JSON_WHOLE_NUMBER_LIMIT = 1e21  # encoding/json writes larger floats with an exponent
_JSON_INTEGERS = range(-(2**63), 2**64)  # what JSON integers are read as, at most


def resolve_plain(text: str) -> tuple[str, Any]:
    """The tag and value go-yaml v2 resolves a plain scalar to (`resolve` in resolve.go)."""
    if text in _RESOLVE_MAP:
        return _RESOLVE_MAP[text]
    if text.startswith("."):
        if _GO_FLOAT_FROM_DOT.fullmatch(text):
            return _finite_float(text.replace("_", ""), text)
    elif text[:1] in _NUMBER_START:
        plain = text.replace("_", "")
        integer = _go_integer(plain)
        if integer is not None:
            return INTEGER_TAG, integer
        if _GO_YAML_FLOAT.fullmatch(plain):
            return _finite_float(plain, text)
        binary = _GO_BINARY_AFTER_PREFIX.fullmatch(plain)
        if binary and int(binary.group(1), 2) in _INT64:
            return INTEGER_TAG, int(binary.group(1), 2)
    return STRING_TAG, text


def _go_integer(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), else strconv.ParseUint(text, 0, 64); None if neither."""
    match = _GO_INTEGER.fullmatch(text)
    if match is None:
        return None
    base = next(name for name in _GO_BASES if match.group(name) is not None)
    magnitude = int(match.group(base), _GO_BASES[base])
    value = -magnitude if match.group("sign") == "-" else magnitude
    if value in _INT64 or (not match.group("sign") and value <= _UINT64_MAX):
        return value
    return None


def _finite_float(number: str, text: str) -> tuple[str, Any]:
    """A float, or the string when ParseFloat says it is out of range."""
    value = float(number)
    return (FLOAT_TAG, value) if math.isfinite(value) else (STRING_TAG, text)


def decode_scalar(tag: str, text: str) -> Any:
    """The value go-yaml v2 decodes a scalar with `tag` (resolved or explicit) to, into a Go
    `interface{}` (`scalar` in decode.go). ValueError for a scalar that is not of its tag."""
    if tag == BINARY_TAG:
        try:
            data = base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
        except binascii.Error:
            raise ValueError("!!binary value contains invalid base64 data") from None
        # encoding/json writes each byte that is not UTF-8 as U+FFFD.
        return re.sub("[\udc80-\udcff]", "\ufffd", data.decode("utf-8", "surrogateescape"))
    if tag not in (BOOLEAN_TAG, INTEGER_TAG, FLOAT_TAG, NULL_TAG):
        return text  # a string, a timestamp's text, or the text of a scalar of another tag
    resolved, value = resolve_plain(text)
    if resolved == tag:
        return value
    if (resolved, tag) == (INTEGER_TAG, FLOAT_TAG):
        return float(value)
    raise ValueError(f"cannot decode !!{_short(resolved)} `{text}` as a !!{_short(tag)}")


def _short(tag: str) -> str:
    return tag.removeprefix(TAG_PREFIX)


class _GoYamlResolver(VersionedResolver):
    """Tags plain scalars as go-yaml v2 resolves them, whatever the document's %YAML version."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            return Tag(suffix=MERGE_TAG if value == "<<" else resolve_plain(value)[0])
        return super().resolve(kind, value, implicit)


class _KubectlConstructor(RoundTripConstructor):
    """ruamel.yaml's round-trip constructor (comments, key order and quoting kept), with
    every scalar that is not a string decoded as go-yaml v2 decodes it."""

    def construct_as_go_yaml(self, node: Node) -> Any:
        if not isinstance(node, ScalarNode):  # a collection, whose tag go-yaml ignores
            return self.construct_unknown(node)
        try:
            return decode_scalar(str(node.tag), node.value)
        except ValueError as error:
            raise ConstructorError(None, None, str(error), node.start_mark) from None

    def construct_yaml_str(self, node: Node) -> Any:
        if node.ctag.handle:  # an explicit !!str, which ruamel.yaml would keep as a tagged scalar
            return self.construct_scalar(node)
        return super().construct_yaml_str(node)


_GO_YAML_TAGS = (BOOLEAN_TAG, INTEGER_TAG, FLOAT_TAG, NULL_TAG, BINARY_TAG, TIMESTAMP_TAG)
_COLLECTION_TAGS = tuple(TAG_PREFIX + name for name in ("omap", "pairs", "set"))
for _tag in (*_GO_YAML_TAGS, *_COLLECTION_TAGS, None):
    # None: any tag it does not know, such as a merge key's "<<" where it is a value.
    _KubectlConstructor.add_constructor(_tag, _KubectlConstructor.construct_as_go_yaml)
_KubectlConstructor.add_constructor(STRING_TAG, _KubectlConstructor.construct_yaml_str)


def kubectl_reader() -> YAML:
    """A round-trip reader (comments, key order and quoting kept) that reads scalars as
    kubectl does. A scalar not of its tag is a ruamel.yaml MarkedYAMLError."""
    yaml = YAML()
    yaml.Resolver = _GoYamlResolver
    yaml.Constructor = _KubectlConstructor
    yaml.preserve_quotes = True
    return yaml


class NotJson(ValueError):
    """Data that kubectl cannot send as JSON; the message says where and why."""


def kubectl_json(value: Any, where: str = "") -> Any:
    """The JSON value (dicts, lists, str, int, float, bool, None) that kubectl sends for data
    read by `kubectl_reader`, as sigs.k8s.io/yaml and encoding/json write it.

    NotJson for what kubectl refuses: an infinity or NaN, a key that is null or a collection.
    """
    if isinstance(value, dict):
        return {
            _json_key(key, where): kubectl_json(item, f"{where}.{key}" if where else str(key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [kubectl_json(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotJson(f"{where or 'the value'} is {value}, which JSON has no number for")
        if value.is_integer() and abs(value) < _JSON_WHOLE_NUMBER_LIMIT:
            whole = int(Decimal(repr(value)))  # Go's shortest digits: 1e18+1 is 1e18
            if whole in _JSON_INTEGERS:  # else the same number, written with an exponent
                return whole
        return float(value)
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


def _json_key(key: Any, where: str) -> str:
    """A mapping key as sigs.k8s.io/yaml's YAMLToJSON writes it (convertToJSONableObject)."""
    if isinstance(key, str):
        return str(key)
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int) and key in _INT64:
        return str(key)
    if isinstance(key, float):
        return _go_float32_text(key)
    raise NotJson(f"{where or 'the object'} has the key {key!r}, which JSON cannot hold")


def _go_float32_text(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32), with go-yaml's names for infinity and NaN."""
    try:
        single = struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        single = math.copysign(math.inf, value)
    if math.isnan(single):
        return ".nan"
    if math.isinf(single):
        return ".inf" if single > 0 else "-.inf"
    if single == 0:
        return "-0" if math.copysign(1, single) < 0 else "0"
    for digits in range(1, 10):  # the shortest decimal that reads back as the same float32
        text = f"{single:.{digits - 1}e}"
        if struct.unpack("<f", struct.pack("<f", float(text)))[0] == single:
            break
    mantissa, exponent = text.split("e")
    if int(exponent) < -4 or int(exponent) >= 6:  # %e, as 'g' with the shortest precision
        return f"{mantissa}e{exponent[0]}{int(exponent[1:]):02d}"
    return format(Decimal(text), "f")


def read_differently(text: str) -> bool:
    """Whether go-yaml v2 (kubectl), a YAML 1.1 or a YAML 1.2 reader would read `text`,
    written plain, as anything but it.

    YAML 1.1's resolver (ruamel.yaml's) also takes `y`, `Y`, `n`, `N` for booleans, as go-yaml
    v2 does, and sexagesimal numbers such as `1:20`.
    """
    return resolve_plain(text)[0] != STRING_TAG or any(
        resolver.resolve(ScalarNode, text, (True, False)) != STRING_TAG
        for resolver in (_YAML_1_1, _YAML_1_2)
    )


class _KubectlSafeRepresenter(RoundTripRepresenter):
    """ruamel.yaml's round-trip representer, quoting what a YAML 1.1 reader would misread."""

    def represent_str(self, data: str) -> Any:
        if read_differently(data) or not YAML_1_1_LINE_BREAKS.isdisjoint(data):
            return self.represent_scalar(STRING_TAG, data, style='"')
        return super().represent_str(data)

    def represent_float(self, data: float) -> Any:
        """`1e-07` would be a string to YAML 1.1 (its floats have a fraction): `1.0e-07`."""
        text = repr(data)
        if math.isfinite(data) and "e" in text and "." not in text:
            mantissa, exponent = text.split("e")
            return self.represent_scalar(FLOAT_TAG, f"{mantissa}.0e{exponent}")
        return super().represent_float(data)


_KubectlSafeRepresenter.add_representer(str, _KubectlSafeRepresenter.represent_str)
_KubectlSafeRepresenter.add_representer(float, _KubectlSafeRepresenter.represent_float)


def yaml_writer(*, mapping_indent: int = 2, sequence_offset: int = 0) -> YAML:
    """A round-trip writer: comments and styles kept, long values on one line, and every
    string that a YAML 1.1 reader would misread quoted.

    `sequence_offset` is the number of spaces before a block sequence's dash, relative to its
    key (0: `key:\\n- item`, 2: `key:\\n  - item`).
    """
    yaml = YAML()
    yaml.Representer = _KubectlSafeRepresenter
    yaml.indent(mapping=mapping_indent, sequence=sequence_offset + 2, offset=sequence_offset)
    yaml.width = 4096  # long values stay on one line, as they were written
    return yaml


def dump_yaml(data: Any, stream: TextIO) -> None:
    """Writes one object as a YAML document, in the order it was built, without aliases."""
    yaml = yaml_writer()
    yaml.representer.ignore_aliases = lambda *_: True
    yaml.dump(data, stream)
