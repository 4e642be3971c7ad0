"""`python -m injector inject|uninject|explain`: end to end as a process, and each behaviour of
the commands in this process."""

import os
import re
import subprocess
import sys
from pathlib import Path
from subprocess import CompletedProcess, Popen
from typing import Any

import orjson
import pytest
import yaml as pyyaml
from lines import lines
from ruamel.yaml import YAML
from test_manifest_injection import webhook_template

from injector.cli import main
from injector.core.engine import Injector

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = Path(__file__).parent / "data" / "manifests"
REAL_WORLD = Path(__file__).parent / "data" / "real-world"
MIXED = MANIFESTS / "mixed.yaml"
POD_JSON = (MANIFESTS / "pod.json").read_bytes()
SHAPES = REAL_WORLD / "roundtrip-shapes.yaml"
YAML_1_1 = "yaml11-strings.yaml"
# The shapes again, with what a file from another editor brings: CR LF, a byte order mark, no
# final line break.
SHAPES_CRLF = b"\xef\xbb\xbf" + SHAPES.read_bytes().replace(b"\n", b"\r\n").rstrip(b"-\r\n")

ENVIRONMENT = {k: v for k, v in os.environ.items() if not k.startswith("INJECTOR_")}


def start(*args: str, stdin: Any = subprocess.DEVNULL, stderr: Any = subprocess.PIPE) -> Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "injector", *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=stderr,
        cwd=REPO,
        env=ENVIRONMENT,
    )


def piped(first: list[str], second: list[str], stdin: Any = subprocess.DEVNULL) -> Popen:
    """`injector FIRST | injector SECOND`; the first's exit code is checked by `finish`."""
    upstream = start(*first, stdin=stdin, stderr=subprocess.DEVNULL)
    downstream = start(*second, stdin=upstream.stdout)
    assert upstream.stdout is not None
    upstream.stdout.close()  # the pipe is the second's now
    PIPED.append(upstream)
    return downstream


PIPED: list[Popen] = []


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CompletedProcess[bytes]]:
    """The end-to-end runs of the real CLI, started together to take the time of one."""
    crlf = tmp_path_factory.mktemp("crlf") / "shapes.yaml"
    crlf.write_bytes(SHAPES_CRLF)
    with (MANIFESTS / "pod.json").open("rb") as pod:
        processes = {
            "inject": start("inject", "-f", str(MIXED)),
            "stdin json": start("inject", "-f", "-", "-o", "json", "-n", "shop", stdin=pod),
            "malformed.yaml": start("inject", "-f", str(MANIFESTS / "malformed.yaml")),
            "denied.yaml": start("inject", "-f", str(MANIFESTS / "denied.yaml")),
            "empty.yaml": start("inject", "-f", str(MANIFESTS / "empty.yaml")),
            "inject | uninject": piped(["inject", "-f", str(MIXED)], ["uninject", "-f", "-"]),
            "shapes": start("inject", "-f", str(SHAPES)),
            "shapes | uninject": piped(["inject", "-f", str(SHAPES)], ["uninject", "-f", "-"]),
            "crlf | uninject": piped(["inject", "-f", str(crlf)], ["uninject", "-f", "-"]),
            "yaml 1.1": start("inject", "-f", str(REAL_WORLD / YAML_1_1)),
            "yaml 1.1 json": start("inject", "-f", str(REAL_WORLD / YAML_1_1), "-o", "json"),
            "settings": start("inject", "-f", str(REAL_WORLD / "settings-on-workload.yaml")),
            "explain settings": start(
                "explain", "-f", str(REAL_WORLD / "settings-on-workload.yaml")
            ),
        }
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        results[name] = CompletedProcess(process.args, process.returncode, stdout, stderr)
    for upstream in PIPED:
        assert upstream.wait(timeout=120) == 0
    return results


def err_lines(result: CompletedProcess[bytes]) -> list[str]:
    return lines(result.stderr.decode())


def test_inject_writes_what_the_webhook_would_and_reports_each_workload(
    injector: Injector, runs: dict[str, CompletedProcess[bytes]]
) -> None:
    result = runs["inject"]
    assert result.returncode == 0, result.stderr
    where = f"{MIXED} document"
    assert err_lines(result) == [
        f"{where} 1: Deployment/web: injected",
        f"{where} 4, items[0]: Pod/debug: injected",
        f"{where} 4, items[1]: StatefulSet/db: injected",
        f"{where} 5: DaemonSet/node-agent: skipped (host-network)",
        f"{where} 6: Job/import: skipped (opted-out)",
        f"{where} 7: CronJob/report: injected",
        f"{where} 8: ReplicaSet/legacy-web: injected",
        f"{where} 9: ReplicationController/older-web: injected",
        "8 workloads in 10 documents: 6 injected, 2 skipped",
    ]
    yaml = YAML(typ="safe", pure=True)
    before = list(yaml.load_all(MIXED.read_text()))
    after = list(yaml.load_all(result.stdout.decode()))
    assert [d["kind"] for d in after] == [d["kind"] for d in before]
    templates = [
        (before[0], after[0], ["spec", "template"]),
        (before[3]["items"][0], after[3]["items"][0], []),
        (before[3]["items"][1], after[3]["items"][1], ["spec", "template"]),
        (before[6], after[6], ["spec", "jobTemplate", "spec", "template"]),
        (before[8], after[8], ["spec", "template"]),
    ]
    for old, new, path in templates:
        expected = webhook_template(injector, dig(old, path), "shop")
        assert {key: dig(new, path)[key] for key in ("metadata", "spec")} == expected
    assert after[1:3] == before[1:3]
    assert after[9] == before[9]


def dig(obj: dict, path: list[str]) -> dict:
    for key in path:
        obj = obj[key]
    return obj


def test_documents_not_injected_are_written_as_they_were_read(
    runs: dict[str, CompletedProcess[bytes]],
) -> None:
    written = runs["inject"].stdout.decode().split("\n---\n")
    read = MIXED.read_text().split("\n---\n")
    assert [i for i, (a, b) in enumerate(zip(read, written, strict=True)) if a == b] == [
        1,
        2,
        4,
        5,
        9,
    ]


@pytest.mark.parametrize(
    ("name", "original"),
    [
        ("inject | uninject", MIXED.read_bytes()),
        ("shapes | uninject", SHAPES.read_bytes()),
        ("crlf | uninject", SHAPES_CRLF),
    ],
)
def test_uninject_of_inject_gives_back_the_bytes(
    runs: dict[str, CompletedProcess[bytes]], name: str, original: bytes
) -> None:
    result = runs[name]
    assert result.returncode == 0, result.stderr
    assert result.stdout == original
    assert err_lines(result)[-1].endswith(" uninjected")


def test_the_shapes_other_injectors_rewrite_are_kept(
    runs: dict[str, CompletedProcess[bytes]],
) -> None:
    result = runs["shapes"]
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    for kept in (
        "  annotations: null\n",
        '  regions: "[eu, us]"   \n',
        "    replicas: null\n",
        '              args: ["--port", "8080",  "--verbose"]\n',
        "        matchLabels: {app: search}\n",
    ):
        assert kept in text
    assert text.endswith("---\n")
    assert text.startswith(SHAPES.read_text().split("---\n")[0] + "---\n")


def test_strings_kubectl_would_read_as_booleans_are_quoted(
    injector: Injector, runs: dict[str, CompletedProcess[bytes]]
) -> None:
    yaml_result, json_result = runs["yaml 1.1"], runs["yaml 1.1 json"]
    assert yaml_result.returncode == json_result.returncode == 0
    as_kubectl_reads = list(pyyaml.safe_load_all(yaml_result.stdout))
    assert as_kubectl_reads == orjson.loads(json_result.stdout)["items"]
    before = list(YAML(typ="safe", pure=True).load_all((REAL_WORLD / YAML_1_1).read_text()))
    for old, new, path in zip(before, as_kubectl_reads, [["spec", "template"], []], strict=True):
        expected = webhook_template(injector, dig(old, path), "shop")
        assert {key: dig(new, path)[key] for key in ("metadata", "spec")} == expected
    annotations = as_kubectl_reads[1]["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/default-container"] == "on"


def test_settings_on_a_workloads_own_metadata_are_warned_about(
    runs: dict[str, CompletedProcess[bytes]],
) -> None:
    warning = (
        "warning: annotations injector.dev/inject, injector.dev/exclude-outbound-ports are on "
        "the Deployment's own metadata, where the injector does not read them: they belong "
        "under spec.template.metadata.annotations"
    )
    inject, explain = runs["settings"], runs["explain settings"]
    assert inject.returncode == explain.returncode == 0
    assert err_lines(inject)[:2] == [
        f"{REAL_WORLD / 'settings-on-workload.yaml'} document 1: Deployment/batch-api: injected",
        f"  {warning}",
    ]
    assert f"\n  {warning}\n" in explain.stdout.decode()


def test_inject_reads_json_from_stdin_and_writes_json(
    injector: Injector, runs: dict[str, CompletedProcess[bytes]]
) -> None:
    result = runs["stdin json"]
    assert result.returncode == 0, result.stderr
    assert err_lines(result) == [
        "stdin document 1: Pod/api: injected",
        "1 workload in 1 document: 1 injected",
    ]
    injected = orjson.loads(result.stdout)
    expected = webhook_template(injector, orjson.loads(POD_JSON), "shop")
    assert {"metadata": injected["metadata"], "spec": injected["spec"]} == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "malformed.yaml",
            "document 2: not valid YAML: expected ',' or ']', but got '<stream end>' at line 11, "
            "column 1, while parsing a flow sequence at line 10, column 11",
        ),
        (
            "denied.yaml",
            "document 1: Deployment/noisy: denied (invalid-annotation): annotation "
            "injector.dev/log-level='loud' is invalid: expected one of trace, debug, info, "
            "warning, error, critical, off",
        ),
    ],
)
def test_invalid_input_exits_1_naming_the_document_and_writes_nothing(
    runs: dict[str, CompletedProcess[bytes]], name: str, message: str
) -> None:
    result = runs[name]
    assert result.returncode == 1
    assert result.stdout == b""
    assert err_lines(result)[0] == f"error: {MANIFESTS / name} {message}"
    assert b"Traceback" not in result.stderr


def test_an_empty_file_is_nothing_to_do(runs: dict[str, CompletedProcess[bytes]]) -> None:
    result = runs["empty.yaml"]
    assert (result.returncode, result.stdout) == (0, (MANIFESTS / "empty.yaml").read_bytes())
    assert result.stderr.decode() == f"nothing to do: no documents in {MANIFESTS / 'empty.yaml'}\n"


# The commands, run in this process.


@pytest.fixture(autouse=True)
def no_injector_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("INJECTOR_"):
            monkeypatch.delenv(name)


def run(*argv: str) -> int:
    return main(list(argv))


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations: {annotations}
spec:
  containers: {containers}
"""
APP = "[{name: app, image: app}]"


def test_the_configuration_comes_from_config_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, "config.yaml", "defaultPolicy: disabled\n")
    assert run("inject", "-f", str(MIXED), "--config", config) == 0
    from_option = capsys.readouterr()
    assert from_option.out == MIXED.read_text()
    assert lines(from_option.err)[0] == f"{MIXED} document 1: Deployment/web: skipped " + (
        "(not-opted-in)"
    )
    monkeypatch.setenv("INJECTOR_CONFIG_FILE", config)
    assert run("inject", "-f", str(MIXED)) == 0
    assert capsys.readouterr() == from_option


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "error: the configuration {path} cannot be read: No such file or directory"),
        ("defaultPolicy: sometimes\n", "error: {path}: invalid configuration: defaultPolicy: "),
    ],
)
def test_an_unusable_configuration_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str | None, message: str
) -> None:
    path = tmp_path / "config.yaml"
    if config is not None:
        path.write_text(config)
    assert run("explain", "-f", str(MIXED), "--config", str(path)) == 1
    assert capsys.readouterr().err.startswith(message.format(path=path))


WITHOUT_NAMESPACES = re.sub(r"^ *namespace: [a-z]+\n", "", MIXED.read_text(), flags=re.MULTILINE)


def test_a_namespace_given_decides_for_objects_without_their_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "mixed.yaml", WITHOUT_NAMESPACES)
    assert run("inject", "-f", path, "-n", "kube-system") == 0
    output = capsys.readouterr()
    assert output.out == WITHOUT_NAMESPACES
    assert output.err.count("skipped (excluded-namespace)") == 8


@pytest.mark.parametrize("command", ["inject", "explain"])
def test_a_namespace_given_that_contradicts_an_objects_own_is_an_error(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert run(command, "-f", str(MIXED), "-n", "shop") == 1
    output = capsys.readouterr()
    assert output.out == ""
    assert output.err == (
        f"error: {MIXED} document 5: DaemonSet/node-agent: the namespace from the provided "
        'object "monitoring" does not match the namespace "shop" given with -n: pass '
        "-n monitoring, or leave -n out\n"
    )


def test_warnings_are_reported_under_their_workload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = write(
        tmp_path, "pod.yaml", POD.format(annotations="{injector.dev/loglevel: x}", containers=APP)
    )
    assert run("inject", "-f", pod) == 0
    assert lines(capsys.readouterr().err)[:2] == [
        f"{pod} document 1: Pod/p: injected",
        "  warning: annotation injector.dev/loglevel is not known to the injector and was ignored",
    ]


def test_a_pod_the_api_server_would_reject_is_invalid_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pod = write(tmp_path, "pod.yaml", POD.format(annotations="{}", containers="[]"))
    assert run("inject", "-f", pod, "-f", str(MIXED)) == 1
    output = capsys.readouterr()
    assert output.out == ""
    assert lines(output.err)[0] == (
        f"error: {pod} document 1: Pod/p: not a valid Pod: "
        "spec.containers must list at least one container"
    )
    assert lines(output.err)[-1] == (
        "9 workloads in 11 documents: 6 injected, 1 invalid, 2 skipped"
    )


def test_a_non_object_document_is_invalid_input(capsys: pytest.CaptureFixture[str]) -> None:
    path = MANIFESTS / "not-a-mapping.yaml"
    assert run("uninject", "-f", str(path)) == 1
    assert capsys.readouterr() == (
        "",
        f"error: {path} document 2: expected a Kubernetes object (a mapping), found a list\n",
    )


def test_what_is_passed_over_is_said_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "other.yaml",
        "apiVersion: apps/v1\nkind: Pod\nmetadata: {name: wrong}\nspec: {containers: []}\n---\n"
        "apiVersion: v1\nkind: List\nitems:\n- null\n- "
        + POD.format(annotations="{}", containers=APP).replace("\n", "\n  "),
    )
    assert run("inject", "-f", path) == 0
    assert lines(capsys.readouterr().err) == [
        f"{path} document 1: Pod/wrong: not injected: a Pod's apiVersion is v1, not apps/v1",
        f"{path} document 2, items[0]: skipped: the item is null",
        f"{path} document 2, items[1]: Pod/p: injected",
        "1 workload in 2 documents: 1 injected",
    ]


def test_directories_are_read_recursively_with_r(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "apps").mkdir()
    write(tmp_path, "apps/pod.yaml", POD.format(annotations="{}", containers=APP))
    write(tmp_path, "settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n")
    assert run("inject", "-f", str(tmp_path)) == 0
    assert lines(capsys.readouterr().err)[-1] == (
        "no workloads in 1 document: passed through unchanged"
    )
    assert run("inject", "-R", "-f", str(tmp_path)) == 0
    output = capsys.readouterr()
    assert lines(output.err) == [
        f"{tmp_path / 'apps' / 'pod.yaml'} document 1: Pod/p: injected",
        "1 workload in 2 documents: 1 injected",
    ]
    assert output.out.endswith("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\n")


def test_uninject_of_manifests_without_the_proxy_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "b-pod.json", POD_JSON.decode())
    write(tmp_path, "a-mixed.yaml", MIXED.read_text())
    assert run("uninject", "-f", str(tmp_path), "-o", "json") == 0
    output = capsys.readouterr()
    documents = [*YAML(typ="safe").load_all(MIXED.read_text()), orjson.loads(POD_JSON)]
    assert orjson.loads(output.out)["items"] == documents
    assert lines(output.err)[-1] == "9 workloads in 11 documents: 9 not injected"
    assert run("uninject", "-f", str(tmp_path)) == 0
    assert capsys.readouterr().out == f"{MIXED.read_text()}---\n{POD_JSON.decode()}"


def test_explain_writes_each_decision_and_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("explain", "-f", str(MIXED)) == 0
    output = capsys.readouterr()
    assert output.err == ""
    assert output.out.startswith("configuration digest ")
    sections = output.out.split("\n\n")[1:]
    assert [lines(section)[3] for section in sections] == [
        "  reason: injected: the default policy is enabled",
        "  reason: injected: the default policy is enabled",
        "  reason: injected: the default policy is enabled",
        "  reason: host-network: the Pod uses the node's network (hostNetwork: true)",
        "  reason: opted-out: annotation injector.dev/inject=false",
        "  reason: injected: the default policy is enabled",
        "  reason: injected: the default policy is enabled",
        "  reason: injected: the default policy is enabled",
    ]
    assert "  override: injector.dev/log-level=debug" in sections[0]
    assert "    +      initContainers:" in sections[0]


def test_explain_as_json_for_scripts(
    injector: Injector, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("explain", "-f", str(MIXED), "-o", "json") == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["configurationDigest"] == injector.digest
    assert report["notes"] == []
    assert [(w["kind"], w["decision"], w["reason"]) for w in report["workloads"]] == [
        ("Deployment", "injected", "injected"),
        ("Pod", "injected", "injected"),
        ("StatefulSet", "injected", "injected"),
        ("DaemonSet", "skipped", "host-network"),
        ("Job", "skipped", "opted-out"),
        ("CronJob", "injected", "injected"),
        ("ReplicaSet", "injected", "injected"),
        ("ReplicationController", "injected", "injected"),
    ]
    assert [w["patch"] == [] for w in report["workloads"]] == [
        False,
        False,
        False,
        True,
        True,
        False,
        False,
        False,
    ]


def test_explain_of_a_denied_workload_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    path = MANIFESTS / "denied.yaml"
    assert run("explain", "-f", str(path)) == 1
    output = capsys.readouterr()
    assert "  decision: denied\n  reason: invalid-annotation: annotation " in output.out
    assert output.err.startswith(f"error: {path} document 1: Deployment/noisy: denied ")
