"""YAML that kubectl's reader (YAML 1.1) reads as it was meant: the webhook configuration."""

import copy
import io

import pytest
import yaml as pyyaml
from hypothesis import given, settings
from hypothesis import strategies as st

from injector.cluster.webhook_config import build_webhook_configuration
from injector.core.config import InjectorConfig
from injector.kube.yaml import dump_yaml, read_differently


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                ["on", "off", "y", "N", "no", "~", "null", "0777", "1:20", "1e3", "a\u2028b\n"]
            ),
            st.text(st.characters(codec="utf-8", blacklist_categories=["Cs"]), max_size=8),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_the_webhook_configuration_reads_the_same_to_a_yaml_1_1_reader(values: list[str]) -> None:
    data = {"metadata": {"name": values[0], "labels": dict.fromkeys(values, "x")}, "v": values}
    out = io.StringIO()
    dump_yaml(copy.deepcopy(data), out)
    assert pyyaml.safe_load(out.getvalue()) == data


@pytest.mark.parametrize("name", ["on", "off", "yes", "y", "n", "NO", "null", "~", "0777"])
def test_webhook_config_quotes_a_namespace_kubectl_would_misread(name: str) -> None:
    manifest = build_webhook_configuration(
        InjectorConfig(), "https://a.example/", extra_excluded_namespaces=(name,)
    )
    out = io.StringIO()
    dump_yaml(manifest, out)
    assert f'- "{name}"\n' in out.getvalue()
    assert pyyaml.safe_load(out.getvalue()) == manifest


@pytest.mark.parametrize(
    ("text", "misread"),
    [
        ("off", True),
        ("Y", True),
        ("NULL", True),
        ("0o17", True),
        ("0b101", True),
        ("190:20:30", True),
        ("2024-05-01", True),
        (".NaN", True),
        ("<<", True),
        ("=", True),
        ("None", False),
        ("enabled", False),
        ("v1", False),
        ("1.2.3", False),
    ],
)
def test_the_strings_a_yaml_reader_misreads_are_known(text: str, misread: bool) -> None:
    assert read_differently(text) is misread
