"""What kubectl sends for a YAML stream, told by a reader independent of the injector's: PyYAML
(YAML 1.1), changed only where go-yaml v2, kubectl's reader, resolves the scalars the tests
write otherwise than YAML 1.1 does (go-yaml v2.4.0, resolve.go and decode.go):

- `y`, `Y`, `n`, `N` are booleans (resolve.go lists them with `yes` and `no`);
- sexagesimal numbers (`1:20`, `1:20.5`) are strings ("base 60 floats ... are purposefully
  unsupported");
- timestamps (`2001-12-14`) are their text (decode.go decodes them into `interface{}` so);

and each document as the JSON kubectl sends: keys are strings (sigs.k8s.io/yaml writes `on:`
as `"true"`, `0x1F:` as `"31"`).
"""

import re
from typing import Any, ClassVar

import yaml as pyyaml

INTEGER_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class KubectlLoader(pyyaml.SafeLoader):
    """PyYAML's safe loader, reading scalars as go-yaml v2 does where the two differ."""

    bool_values: ClassVar = {**pyyaml.SafeLoader.bool_values, "y": True, "n": False}

    def construct_sexagesimal_as_text(self, node: pyyaml.ScalarNode) -> Any:
        if ":" in node.value:
            return self.construct_scalar(node)
        if node.tag == INTEGER_TAG:
            return self.construct_yaml_int(node)
        return self.construct_yaml_float(node)


KubectlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN")
)
KubectlLoader.add_constructor(INTEGER_TAG, KubectlLoader.construct_sexagesimal_as_text)
KubectlLoader.add_constructor(FLOAT_TAG, KubectlLoader.construct_sexagesimal_as_text)
KubectlLoader.add_constructor(TIMESTAMP_TAG, KubectlLoader.construct_scalar)


def kubectl_sends(content: bytes | str) -> list[Any]:
    """The objects of a YAML stream (empty documents left out), as kubectl sends them."""
    return [
        _json_keys(document)
        for document in pyyaml.load_all(content, Loader=KubectlLoader)
        if document is not None
    ]


def _json_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_json_key(key): _json_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_keys(item) for item in value]
    return value


def _json_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    assert isinstance(key, str | int), f"a key the tests do not write: {key!r}"
    return str(key)


def typed(value: Any) -> Any:
    """The value with each scalar's JSON type beside it, so that equal values of other types
    (True and 1, "1" and 1) differ, and an integer equals the float of the same number (JSON
    has one kind of number: kubectl sends 2.0 as 2)."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, int | float):
        return ("number", value)
    if value is None:
        return ("null", None)
    assert isinstance(value, str), f"not a JSON value: {value!r}"
    return ("string", value)
