"""YAML that kubectl reads as it was meant: strings a YAML 1.1 reader would take for something
else are quoted.

kubectl reads YAML with a YAML 1.1 reader (go-yaml v2, through sigs.k8s.io/yaml), where `off`,
`on`, `y`, `no`… are booleans, `0777` an octal number, `1:20` a sexagesimal one and `~` null;
YAML 1.2 writers (ruamel.yaml's included) leave those plain. Every string that a YAML 1.1 or
YAML 1.2 reader would resolve to another type is written double-quoted, as kubectl itself
writes them (YAML 1.1: https://yaml.org/type/bool.html, int, float, null, timestamp, merge,
value).
"""

from typing import Any, TextIO

from ruamel.yaml import YAML
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.resolver import VersionedResolver

STRING_TAG = "tag:yaml.org,2002:str"
# Line breaks to YAML 1.1 readers only (section 5.4): written raw in a plain, quoted or block
# scalar they would break it; double-quoted, they are escaped.
YAML_1_1_LINE_BREAKS = frozenset("\x85\u2028\u2029")
_YAML_1_1 = VersionedResolver(version=(1, 1))
_YAML_1_2 = VersionedResolver(version=(1, 2))


def read_differently(text: str) -> bool:
    """Whether a YAML 1.1 or 1.2 reader would read `text`, written plain, as anything but it.

    YAML 1.1's resolver (ruamel.yaml's) also takes `y`, `Y`, `n`, `N` for booleans, as go-yaml
    v2 does, and sexagesimal numbers such as `1:20`.
    """
    return any(
        resolver.resolve(ScalarNode, text, (True, False)) != STRING_TAG
        for resolver in (_YAML_1_1, _YAML_1_2)
    )


class _KubectlSafeRepresenter(RoundTripRepresenter):
    """ruamel.yaml's round-trip representer, quoting what a YAML 1.1 reader would misread."""

    def represent_str(self, data: str) -> Any:
        if read_differently(data) or not YAML_1_1_LINE_BREAKS.isdisjoint(data):
            return self.represent_scalar(STRING_TAG, data, style='"')
        return super().represent_str(data)


_KubectlSafeRepresenter.add_representer(str, _KubectlSafeRepresenter.represent_str)


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
