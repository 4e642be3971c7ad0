"""Manifests are read as kubectl reads them: scalars resolved as go-yaml v2 resolves them (YAML
1.1's booleans and octal numbers, no sexagesimals), so that `inject`, `explain` and `-o json`
see the object the API server would get from `kubectl apply`, and the webhook's decision on
it; and what is written reads back, to kubectl, as the same object."""

import io
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import orjson
import pytest
import yaml as pyyaml
from admission_data import respond
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubectl_yaml import kubectl_sends, typed
from lines import lines
from manifest_shapes import Plain, Stream, streams
from test_manifest_commands import piped, start
from test_manifest_injection import (
    KINDS,
    inject_manifest,
    templates,
    uninject_manifest,
    webhook_template,
    workload_object,
    workloads_of,
)

from injector.core.engine import Injector
from injector.errors import ManifestError
from injector.kube.yaml import dump_yaml, kubectl_json, kubectl_reader, read_differently
from injector.manifests.documents import Manifest
from injector.manifests.inject import namespace_for
from injector.manifests.read import parse_manifest
from injector.manifests.workloads import Workload
from injector.manifests.write import json_stream, yaml_stream

# What kubectl sends for `v: TEXT`: go-yaml v2.4.0 decoding into interface{}, written as JSON
# by sigs.k8s.io/yaml's YAMLToJSON (its predecessor ghodss/yaml, the same code), run on each.
GO_YAML_V2 = [
    ("yes", True),
    ("Y", True),
    ("On", True),
    ("n", False),
    ("OFF", False),
    ("tRUE", "tRUE"),
    ("~", None),
    ("Null", None),
    ("", None),
    ("0400", 256),
    ("0644", 420),
    ("0o17", 15),
    ("0O17", 15),
    ("0x1F", 31),
    ("0X1F", 31),
    ("+0x1F", 31),
    ("0b101", 5),
    ("0B101", 5),
    ("-0b101", -5),
    ("0b-101", -5),
    ("1_000", 1000),
    ("1__0", 10),
    ("0x_1F", 31),
    ("_1", "_1"),
    ("08", 8),
    ("0999", 999),
    ("1e3", 1000),
    ("1.5e3", 1500),
    ("+.5", 0.5),
    (".5_5", 0.55),
    ("._5", "._5"),
    ("2.0", 2),
    ("1e20", 100000000000000000000),
    ("1e400", "1e400"),
    ("18446744073709551615", 18446744073709551615),
    ("-9223372036854775809", -9.223372036854776e18),  # a float: Go writes -9223372036854776000
    ("0x10000000000000000", "0x10000000000000000"),
    ("1:20", "1:20"),
    ("190:20:30", "190:20:30"),
    ("1:20.5", "1:20.5"),
    ("2001-12-14", "2001-12-14"),
    ("2001-12-14 21:59:43.10 -5", "2001-12-14 21:59:43.10 -5"),
    ("+.nan", "+.nan"),
    ("=", "="),
    ("<<", "<<"),
    ("0x", "0x"),
]
# The same, for `{KEY: x}`: the key as sigs.k8s.io/yaml writes it.
GO_YAML_V2_KEYS = [
    ("on", "true"),
    ("N", "false"),
    ("0x1F", "31"),
    ("0400", "256"),
    ("1.5", "1.5"),
    ("1e3", "1000"),
    ("3.14159265358979", "3.1415927"),
    ("1e20", "1e+20"),
    ("123456789.0", "1.2345679e+08"),
    ("1e-5", "1e-05"),
    ("1:20", "1:20"),
]
# Explicitly tagged scalars, and the other tags.
GO_YAML_V2_TAGGED = [
    ('!!int "0400"', 256),
    ("!!str 0400", "0400"),
    ("!!float 1", 1),
    ("!!float '0x1F'", 31),
    ("!!bool yes", True),
    ("!!null ''", None),
    ("!!binary aGVsbG8=", "hello"),
    ("!!binary 4oKs4g==", "\u20ac\ufffd"),  # each byte that is not UTF-8 is U+FFFD
    ("!!timestamp 2001-12-14", "2001-12-14"),
    ("!example bar", "bar"),
    ("!example [0644, on]", [420, True]),
    ("!!set {x, y}", {"x": None, "true": None}),
    ("!!omap [x: 1, n: 2]", [{"x": 1}, {"false": 2}]),
]
# What kubectl refuses, and what it says.
KUBECTL_REFUSES = [
    ("v: .inf\n", "v is inf, which JSON has no number for"),
    ("v: [1, -.Inf]\n", "v[1] is -inf, which JSON has no number for"),
    ("v: {w: .NaN}\n", "v.w is nan, which JSON has no number for"),
    ("v: {~: x}\n", "v has the key None, which JSON cannot hold"),
    ("9223372036854775808: x\n", "the object has the key 9223372036854775808"),
    ("v: !!int abc\n", "cannot decode !!str `abc` as a !!int at line 3, column 4"),
    ("v: !!int 1.5\n", "cannot decode !!float `1.5` as a !!int"),
    ("v: !!bool 1\n", "cannot decode !!int `1` as a !!bool"),
    ("v: !!binary '%%'\n", "!!binary value contains invalid base64 data"),
]


def examples(count: int) -> settings:
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def items(json_output: str) -> list[Any]:
    """The objects of `-o json` output: one object, or a List of them."""
    data = orjson.loads(json_output)
    return data["items"] if data.get("kind") == "List" else [data]


def template_in(workload: Workload, manifest: Manifest, objects: list[Any]) -> dict[str, Any]:
    """The workload's Pod template (or Pod) in `objects`, its manifest's documents as read by
    another reader."""
    index = next(i for i, d in enumerate(manifest.documents) if d is workload.document)
    holder = workload.holder_in(objects[index])
    return {key: holder[key] for key in ("metadata", "spec") if key in holder}


def kubectl_reads(text: str) -> Any:
    return kubectl_json(kubectl_reader().load(text))


@pytest.mark.parametrize(("text", "sent"), GO_YAML_V2)
def test_plain_scalars_are_read_as_go_yaml_v2_reads_them(text: str, sent: Any) -> None:
    assert typed(kubectl_reads(f"v: {text}\n")) == typed({"v": sent})
    assert typed(kubectl_reads(f"[{text}]\n" if text else "[~]\n")) == typed([sent])


@pytest.mark.parametrize(("text", "key"), GO_YAML_V2_KEYS)
def test_keys_are_written_as_sigs_k8s_io_yaml_writes_them(text: str, key: str) -> None:
    assert kubectl_reads(f"{text}: x\n") == {key: "x"}


@pytest.mark.parametrize(("text", "sent"), GO_YAML_V2_TAGGED)
def test_tagged_scalars_are_read_as_go_yaml_v2_reads_them(text: str, sent: Any) -> None:
    assert typed(kubectl_reads(f"v: {text}\n")) == typed({"v": sent})


@pytest.mark.parametrize(("text", "message"), KUBECTL_REFUSES)
def test_what_kubectl_refuses_is_an_error_naming_the_document(text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=r"^app\.yaml document 2: ") as raised:
        parse_manifest("app.yaml", f"a: 1\n---\n{text}".encode())
    assert message in str(raised.value)


@pytest.mark.parametrize("directive", ["", "%YAML 1.1\n---\n", "%YAML 1.2\n---\n"])
def test_a_yaml_version_directive_does_not_change_the_reading(directive: str) -> None:
    """(go-yaml v2 refuses `%YAML 1.2`, which the injector reads as any other document.)"""
    manifest = parse_manifest("a.yaml", f"{directive}v: [0400, on, 1:20, 0o17]\n".encode())
    assert kubectl_json(manifest.documents[0].data) == {"v": [256, True, "1:20", 15]}


@pytest.mark.parametrize(
    "text",
    ["0X1F", "0O17", "0B1", "1E1_0", "0x_1F", "+.5", "08", "y", "1:20", "2001-12-14", "<<", "="],
)
def test_strings_that_kubectl_would_resolve_are_quoted_when_written(text: str) -> None:
    assert read_differently(text)
    out = io.StringIO()
    dump_yaml({"v": text}, out)
    assert out.getvalue() == f'v: "{text}"\n'
    assert kubectl_reads(out.getvalue()) == {"v": text}
    assert kubectl_sends(out.getvalue()) == [{"v": text}]


ANCHORED = """\
x-labels: &labels {app: web, tier: "on"}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      labels: *labels
    spec:
      hostNetwork: no
      containers:
      - name: web
        image: registry.example.com/web:1
        env:
        - {name: A, value: 1:20}
        - {name: B, value: 0o17}
        - {name: C, value: 0X1F}
        - {name: D, value: 1e-7}
        - {name: E, value: 2001-12-14}
        - {name: F, value: Y}
        - {name: G, value: 2.0}
      volumes:
      - name: config
        configMap: {name: web, defaultMode: 0644}
"""


def test_a_document_written_anew_reads_to_kubectl_and_yaml_1_1_as_it_was_read(
    injector: Injector,
) -> None:
    manifest = parse_manifest("anchored.yaml", ANCHORED.encode())
    [warning] = inject_manifest(injector, manifest)
    assert warning.startswith("written anew")
    output = yaml_stream([manifest])
    as_json = items(json_stream(manifest.documents))
    assert typed(kubectl_sends(output)) == typed(as_json)
    assert typed(list(pyyaml.safe_load_all(output))) == typed(as_json)  # YAML 1.1 as it is
    [deployment] = as_json
    env = {
        v["name"]: v["value"]
        for v in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    expected = {"A": "1:20", "B": 15, "C": 31, "D": 1e-7, "E": "2001-12-14", "F": True, "G": 2}
    assert typed(env) == typed(expected)
    written = ("value: 15", "value: 31", "value: 1.0e-07", 'value: "1:20"', "defaultMode: 420")
    assert all(text in output for text in written)  # in decimal, as YAML 1.1 and 1.2 read it
    assert "%YAML" not in output
    assert "0o" not in output


# The defects a user met: what kubectl reads as booleans and octal numbers.
HOST_NETWORK_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: agent
spec:
  hostNetwork: yes
  containers:
  - name: agent
    image: registry.example.com/agent:1
"""
# The JSON `kubectl apply` sends for it: `yes` is true.
HOST_NETWORK_POD_SENT = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "agent"},
    "spec": {
        "hostNetwork": True,
        "containers": [{"name": "agent", "image": "registry.example.com/agent:1"}],
    },
}
SCALARS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 0x2
  template:
    spec:
      automountServiceAccountToken: off
      containers:
      - name: web
        image: registry.example.com/web:1
        volumeMounts:
        - {name: config, mountPath: /etc/web, readOnly: y}
      volumes:
      - name: config
        configMap:
          name: web
          defaultMode: 0400
          items:
          - {key: a, path: a, mode: 0644}
---
apiVersion: example.com/v1
kind: Setting
metadata:
  name: on
spec:
  enabled: yes
  disabled: off
  duration: 1:20
  mask: 0x1F
  limit: 1_000
  retries: 2.0
  released: 2001-12-14
  flags: [on, no, "on", 'no', 1:20]
"""
# The JSON kubectl sends for SCALARS: go-yaml v2 read it so.
SCALARS_SENT = [
    {"replicas": 2, "defaultMode": 256, "mode": 420, "readOnly": True, "automount": False},
    {
        "name": True,
        "spec": {
            "enabled": True,
            "disabled": False,
            "duration": "1:20",
            "mask": 31,
            "limit": 1000,
            "retries": 2,
            "released": "2001-12-14",
            "flags": [True, False, "on", "no", "1:20"],
        },
    },
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("kubectl-reading")
    paths = {"host network": folder / "agent.yaml", "scalars": folder / "scalars.yaml"}
    paths["host network"].write_text(HOST_NETWORK_POD)
    paths["scalars"].write_text(SCALARS)
    return paths


@pytest.fixture(scope="module")
def runs(files: dict[str, Path]) -> dict[str, CompletedProcess[bytes]]:
    """The real CLI on the manifests above, started together to take the time of one."""
    host_network, scalars = str(files["host network"]), str(files["scalars"])
    processes = {
        "host network": start("inject", "-f", host_network),
        "host network json": start("inject", "-f", host_network, "-o", "json"),
        "explain host network": start("explain", "-f", host_network, "-o", "json"),
        "scalars": start("inject", "-f", scalars),
        "scalars json": start("inject", "-f", scalars, "-o", "json"),
        "scalars | uninject": piped(["inject", "-f", scalars], ["uninject", "-f", "-"]),
    }
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        results[name] = CompletedProcess(process.args, process.returncode, stdout, stderr)
    return results


def test_a_pod_on_the_host_network_written_yes_is_skipped_as_the_webhook_skips_it(
    injector: Injector, files: dict[str, Path], runs: dict[str, CompletedProcess[bytes]]
) -> None:
    path = files["host network"]
    inject, as_json, explain = (
        runs["host network"],
        runs["host network json"],
        runs["explain host network"],
    )
    assert inject.returncode == as_json.returncode == explain.returncode == 0
    assert inject.stdout == HOST_NETWORK_POD.encode()  # no iptables rules for the host's network
    assert lines(inject.stderr.decode()) == [
        f"{path} document 1: Pod/agent: skipped (host-network)",
        "1 workload in 1 document: 1 skipped",
    ]
    assert orjson.loads(as_json.stdout) == HOST_NETWORK_POD_SENT
    [report] = orjson.loads(explain.stdout)["workloads"]
    assert (report["decision"], report["reason"], report["patch"]) == (
        "skipped",
        "host-network",
        [],
    )
    # The webhook, asked about the Pod as kubectl sends it, decides the same.
    request = {
        "uid": "0d5e8e4c-host-network",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "default",
        "operation": "CREATE",
        "object": HOST_NETWORK_POD_SENT,
    }
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    answer, outcome = respond(injector, orjson.dumps(body))
    assert (outcome.decision, outcome.reason) == ("skipped", "host-network")
    assert answer["response"]["allowed"] and "patch" not in answer["response"]


def test_octal_modes_booleans_and_numbers_reach_json_as_kubectl_sends_them(
    injector: Injector, runs: dict[str, CompletedProcess[bytes]]
) -> None:
    result = runs["scalars json"]
    assert result.returncode == 0, result.stderr
    deployment, setting = orjson.loads(result.stdout)["items"]
    spec = deployment["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "config")
    app = next(c for c in spec["containers"] if c["name"] == "web")
    sent = {
        "replicas": deployment["spec"]["replicas"],
        "defaultMode": volume["configMap"]["defaultMode"],
        "mode": volume["configMap"]["items"][0]["mode"],
        "readOnly": app["volumeMounts"][0]["readOnly"],
        "automount": spec["automountServiceAccountToken"],
    }
    assert typed(sent) == typed(SCALARS_SENT[0])
    # Injected as the webhook injects the Pod kubectl's Deployment creates.
    template = kubectl_sends(SCALARS)[0]["spec"]["template"]
    assert deployment["spec"]["template"] == webhook_template(injector, template, "default")
    assert typed({"name": setting["metadata"]["name"], "spec": setting["spec"]}) == typed(
        SCALARS_SENT[1]
    )


def test_the_yaml_output_keeps_the_text_and_reads_to_kubectl_as_the_json_output(
    runs: dict[str, CompletedProcess[bytes]],
) -> None:
    yaml_result, json_result = runs["scalars"], runs["scalars json"]
    assert yaml_result.returncode == json_result.returncode == 0
    text = yaml_result.stdout.decode()
    for kept in ("defaultMode: 0400", "mode: 0644", "duration: 1:20", "mask: 0x1F", "flags: [on"):
        assert kept in text
    assert "%YAML" not in text
    as_kubectl_reads = kubectl_sends(yaml_result.stdout)
    assert typed(as_kubectl_reads) == typed(orjson.loads(json_result.stdout)["items"])
    assert runs["scalars | uninject"].stdout == SCALARS.encode()


# Scalars written plain for the property tests, each of a kind YAML 1.1 and go-yaml v2 read
# alike but for what `kubectl_yaml` tells apart (y/n, sexagesimals, timestamps). Left out,
# as YAML 1.1 reads them otherwise than go-yaml v2 and the tables above say how kubectl reads
# them: 0o/0X/0B prefixes, exponents without a fraction, 08, +.5, numbers beyond 64 bits.
BOOLEAN_WORDS = [*"yYnN", "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON"]
BOOLEAN_WORDS += ["off", "Off", "OFF", "true", "True", "TRUE", "false", "False", "FALSE"]
OTHER_WORDS = ["~", "null", "Null", "NULL", "app", "v1", "1.2.3", "web-1", "0x", "hello world"]
TIMESTAMPS = [
    "2001-12-14",
    "2002-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10 -5",
    "2001-12-15T02:59:43.1Z",
]
KEY_GROUPS = [  # the texts of one group are one JSON key
    ["on", "yes", "y", "True", "ON"],
    ["off", "no", "N", "FALSE"],
    ["0777", "511", "0x1FF", "0b111111111", "+511", "5_11"],
    ["1:20"],
    ["2001-12-14"],
    ["name"],
]


def with_underscores(draw: st.DrawFn, digits: str) -> str:
    """go-yaml drops every "_" of a number; YAML 1.1 takes them after its first digit."""
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(1, len(digits)))
        digits = digits[:at] + "_" + digits[at:]
    return digits


@st.composite
def integer_texts(draw: st.DrawFn, low: int = -(2**62), high: int = 2**62) -> str:
    value = draw(st.integers(low, high))
    sign = "-" if value < 0 else draw(st.sampled_from(["", "+"]))
    magnitude = abs(value)
    prefix, digits = draw(
        st.sampled_from(
            [
                ("", str(magnitude)),
                ("0", format(magnitude, "o")),
                ("0x", format(magnitude, "x")),
                ("0x", format(magnitude, "X")),
                ("0b", format(magnitude, "b")),
            ]
        )
    )
    return sign + prefix + with_underscores(draw, digits)


@st.composite
def float_texts(draw: st.DrawFn) -> str:
    fraction = draw(st.text("0123456789", min_size=1, max_size=4))
    exponent = draw(st.sampled_from(["", "e", "E"]))
    if exponent:
        exponent += f"{draw(st.integers(-30, 30)):+d}"
    if draw(st.booleans()):
        return f".{fraction}{exponent}"
    sign = draw(st.sampled_from(["", "-", "+"]))
    whole = with_underscores(draw, str(draw(st.integers(0, 10**6))))
    return f"{sign}{whole}.{fraction[: draw(st.integers(0, 4))]}{exponent}"


@st.composite
def sexagesimal_texts(draw: st.DrawFn) -> str:
    parts = [str(draw(st.integers(1, 999)))]
    parts += [f"{draw(st.integers(0, 59)):02d}" for _ in range(draw(st.integers(1, 2)))]
    fraction = draw(st.sampled_from(["", ".", ".5"]))
    return draw(st.sampled_from(["", "-", "+"])) + ":".join(parts) + fraction


PLAIN_SCALARS = st.one_of(
    st.sampled_from(BOOLEAN_WORDS + OTHER_WORDS + TIMESTAMPS),
    integer_texts(),
    float_texts(),
    sexagesimal_texts(),
).map(Plain)


@st.composite
def plain_workloads(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(KINDS)))
    template = draw(templates())
    spec = template["spec"]
    if draw(st.booleans()):
        spec["hostNetwork"] = Plain(draw(st.sampled_from(BOOLEAN_WORDS)))
    values = draw(st.lists(PLAIN_SCALARS, max_size=3))
    spec["containers"][0]["env"] = [{"name": f"V{i}", "value": v} for i, v in enumerate(values)]
    if draw(st.booleans()):
        mode = Plain(draw(integer_texts(0, 0o777)))
        config = {"name": "config", "configMap": {"name": "config", "defaultMode": mode}}
        spec["volumes"] = [*spec.get("volumes", []), config]
    return workload_object(kind, template)


@st.composite
def plain_settings(draw: st.DrawFn) -> dict[str, Any]:
    """An object of a kind the injector leaves alone, written with plain scalars and keys."""
    groups = draw(st.lists(st.sampled_from(KEY_GROUPS), max_size=4, unique_by=str))
    spec: dict[Any, Any] = {Plain(draw(st.sampled_from(g))): draw(PLAIN_SCALARS) for g in groups}
    spec["list"] = draw(st.lists(PLAIN_SCALARS, max_size=4))
    spec["nested"] = {"value": draw(PLAIN_SCALARS)}
    return {
        "apiVersion": "example.com/v1",
        "kind": "Setting",
        "metadata": {"name": "s"},
        "spec": spec,
    }


PLAIN_MANIFESTS = st.lists(st.one_of(plain_workloads(), plain_settings()), min_size=1, max_size=3)


@examples(80)
@given(streams(PLAIN_MANIFESTS))
def test_manifests_are_read_as_kubectl_reads_them(stream: Stream) -> None:
    manifest = parse_manifest("generated.yaml", stream.content)
    assert typed(items(json_stream(manifest.documents))) == typed(kubectl_sends(stream.content))


@examples(50)
@given(streams(PLAIN_MANIFESTS))
def test_injected_manifests_read_to_kubectl_as_the_webhook_injects_what_kubectl_sends(
    injector: Injector, stream: Stream
) -> None:
    manifest = parse_manifest("generated.yaml", stream.content)
    sent = kubectl_sends(stream.content)  # the objects kubectl sends for the input
    workloads = workloads_of(manifest)
    expected = [
        webhook_template(injector, template_in(w, manifest, sent), namespace_for(w, None))
        for w in workloads
    ]

    assert inject_manifest(injector, manifest) == []
    output = yaml_stream([manifest]).encode()
    written = kubectl_sends(output)
    assert typed(written) == typed(items(json_stream(manifest.documents)))
    assert typed([template_in(w, manifest, written) for w in workloads]) == typed(expected)

    again = parse_manifest("injected.yaml", output)
    uninject_manifest(again)
    assert yaml_stream([again]).encode() == stream.content
