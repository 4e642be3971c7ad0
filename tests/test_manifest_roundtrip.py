"""`inject` changes nothing but what it adds, and `uninject` of its output is its input, byte
for byte, for manifests written every way people and tools write them; and what either writes
reads, to a YAML 1.1 reader such as kubectl's, as its JSON output does."""

from typing import Any

import orjson
import yaml as pyyaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from manifest_shapes import Stream, streams
from test_manifest_injection import (
    KINDS,
    inject_manifest,
    template_of,
    templates,
    uninject_manifest,
    webhook_template,
    workload_object,
    workloads_of,
)

from injector.core.engine import Injector
from injector.manifests.inject import namespace_for
from injector.manifests.read import parse_manifest
from injector.manifests.write import json_stream, to_plain, yaml_stream

# Container names and annotation values that end up in what is injected (the default
# container, the proxy's log level, image and resources), among them strings YAML 1.1 readers
# take for booleans, null and numbers.
CONTAINER_NAMES = ["app", "on", "y", "no", "off", "null", "true", "0777", "1e3", "0x1f"]
OVERRIDES = {
    "injector.dev/log-level": ["off", "debug", "info"],
    "injector.dev/proxy-image": ["on", "registry.example.com/proxy:1", "y", "1e3"],
    "injector.dev/proxy-cpu-limit": ["1e3", "500m", "2"],
    "injector.dev/exclude-outbound-ports": ["5432", "8080,9090"],
}
USER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FF, blacklist_characters="\x7f\x85"),
    max_size=12,
)


@st.composite
def workload(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(KINDS)))
    template = draw(templates())
    spec = template["spec"]
    names = draw(st.lists(st.sampled_from(CONTAINER_NAMES), min_size=1, max_size=2, unique=True))
    for container, name in zip(spec["containers"], names, strict=False):
        container["name"] = name
    first = spec["containers"][0]
    first["args"] = draw(
        st.sampled_from([["--port", "8080", "on"], ["sh", "-c", "echo hi\nsleep 1\n"], []])
    )
    if draw(st.booleans()):
        metadata = template.setdefault("metadata", {})
        annotations = metadata.setdefault("annotations", {})
        for key, values in OVERRIDES.items():
            if draw(st.booleans()):
                annotations[key] = draw(st.sampled_from(values))
        annotations["example.com/note"] = draw(USER_TEXT)
    obj = workload_object(kind, template)
    if kind != "Pod" and draw(st.booleans()):
        obj["spec"]["revisionHistoryLimit" if kind == "Deployment" else "paused"] = None
    return obj


def config_map(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "flags", "annotations": None},
        "data": {
            "regions": "[eu, us]",
            "script": draw(st.sampled_from(["echo on\nexit 0\n", "kept\n\n", "no newline"])),
            "flag": "off",
            "note": draw(USER_TEXT),
        },
    }


@st.composite
def manifest_objects(draw: st.DrawFn) -> list[Any]:
    objects = []
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.sampled_from(["workload", "workload", "config map", "list", "empty"]))
        if choice == "workload":
            objects.append(draw(workload()))
        elif choice == "config map":
            objects.append(config_map(draw))
        elif choice == "list":
            items = [draw(workload()), None, config_map(draw)]
            objects.append({"apiVersion": "v1", "kind": "List", "items": items})
        elif objects:  # an empty document, after a marker
            objects.append(None)
    return objects


def is_subsequence(part: str, whole: str) -> bool:
    """Whether `whole` is `part` with characters inserted."""
    characters = iter(whole)
    return all(character in characters for character in part)


def examples(count: int) -> settings:
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@examples(100)
@given(streams(manifest_objects()))
def test_inject_adds_only_and_uninject_gives_back_the_bytes(
    injector: Injector, stream: Stream
) -> None:
    manifest = parse_manifest("generated.yaml", stream.content)
    objects = [obj for obj in stream.objects if obj is not None]
    assert [to_plain(d.data) for d in manifest.documents] == objects  # written as meant
    expected = [
        webhook_template(injector, template_of(w), namespace_for(w, None))
        for w in workloads_of(manifest)
    ]

    assert inject_manifest(injector, manifest) == []
    for document in manifest.documents:
        assert is_subsequence(document.text, document.output_text)
        if not any(w.document is document for w in workloads_of(manifest)):
            assert document.changed is None
    injected = yaml_stream([manifest]).encode()
    assert [to_plain(template_of(w)) for w in workloads_of(parse_manifest("out", injected))] == (
        expected
    )

    again = parse_manifest("injected.yaml", injected)
    uninject_manifest(again)
    assert yaml_stream([again]).encode() == stream.content


@examples(60)
@given(streams(manifest_objects()))
def test_a_yaml_1_1_reader_reads_the_yaml_output_as_the_json_output(
    injector: Injector, stream: Stream
) -> None:
    manifest = parse_manifest("generated.yaml", stream.content)
    inject_manifest(injector, manifest)
    as_yaml = [doc for doc in pyyaml.safe_load_all(yaml_stream([manifest]).encode()) if doc]
    as_json = orjson.loads(json_stream(manifest.documents))
    assert as_yaml == (as_json["items"] if len(manifest.documents) != 1 else [as_json])
