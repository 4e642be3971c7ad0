"""`python -m injector inject|uninject|explain`: end to end as a process, and each behaviour of
the commands in this process."""

import os
import subprocess
import sys
from pathlib import Path
from subprocess import CompletedProcess, Popen
from typing import Any

import orjson
import pytest
from lines import lines
from ruamel.yaml import YAML
from test_manifest_injection import webhook_template

from injector.cli import main
from injector.core.engine import Injector

REPO = Path(__file__).resolve().parent.parent
MANIFESTS = Path(__file__).parent / "data" / "manifests"
MIXED = MANIFESTS / "mixed.yaml"
POD_JSON = (MANIFESTS / "pod.json").read_bytes()


ENVIRONMENT = {k: v for k, v in os.environ.items() if not k.startswith("INJECTOR_")}


def start(*args: str, stdin: Any = subprocess.DEVNULL, stderr: Any = subprocess.PIPE) -> Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "injector", *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=REPO,
        env=ENVIRONMENT,
    )


@pytest.fixture(scope="module")
def runs() -> dict[str, CompletedProcess[str]]:
    """The end-to-end runs of the real CLI, started together to take the time of one."""
    with (MANIFESTS / "pod.json").open() as pod:
        processes = {
            "inject": start("inject", "-f", str(MIXED)),
            "stdin json": start("inject", "-f", "-", "-o", "json", "-n", "shop", stdin=pod),
            "malformed.yaml": start("inject", "-f", str(MANIFESTS / "malformed.yaml")),
            "denied.yaml": start("inject", "-f", str(MANIFESTS / "denied.yaml")),
            "empty.yaml": start("inject", "-f", str(MANIFESTS / "empty.yaml")),
        }
        upstream = start("inject", "-f", str(MIXED), stderr=subprocess.DEVNULL)
        processes["inject | uninject"] = start("uninject", "-f", "-", stdin=upstream.stdout)
        assert upstream.stdout is not None
        upstream.stdout.close()  # the pipe is uninject's now
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=60)
        results[name] = CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert upstream.wait(timeout=60) == 0
    return results


def test_inject_writes_what_the_webhook_would_and_reports_each_workload(
    injector: Injector, runs: dict[str, CompletedProcess[str]]
) -> None:
    result = runs["inject"]
    assert result.returncode == 0, result.stderr
    where = f"{MIXED} document"
    assert lines(result.stderr) == [
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
    after = list(yaml.load_all(result.stdout))
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


def test_inject_keeps_the_comments(runs: dict[str, CompletedProcess[str]]) -> None:
    for line in lines(MIXED.read_text()):
        if "#" in line:
            assert line.strip() in runs["inject"].stdout


def test_uninject_of_inject_gives_back_the_file(runs: dict[str, CompletedProcess[str]]) -> None:
    result = runs["inject | uninject"]
    assert result.returncode == 0, result.stderr
    assert result.stdout == MIXED.read_text()
    assert lines(result.stderr)[-1] == ("8 workloads in 10 documents: 2 not injected, 6 uninjected")


def test_inject_reads_json_from_stdin_and_writes_json(
    injector: Injector, runs: dict[str, CompletedProcess[str]]
) -> None:
    result = runs["stdin json"]
    assert result.returncode == 0, result.stderr
    assert lines(result.stderr) == [
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
    runs: dict[str, CompletedProcess[str]], name: str, message: str
) -> None:
    result = runs[name]
    assert result.returncode == 1
    assert result.stdout == ""
    assert lines(result.stderr)[0] == f"error: {MANIFESTS / name} {message}"
    assert "Traceback" not in result.stderr


def test_an_empty_file_is_nothing_to_do(runs: dict[str, CompletedProcess[str]]) -> None:
    result = runs["empty.yaml"]
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == f"nothing to do: no documents in {MANIFESTS / 'empty.yaml'}\n"


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
        ("defaultPolicy: sometimes\n", "error: invalid configuration: defaultPolicy: "),
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


def test_a_namespace_given_decides_for_every_workload(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("inject", "-f", str(MIXED), "-n", "kube-system") == 0
    output = capsys.readouterr()
    assert output.out == MIXED.read_text()
    assert output.err.count("skipped (excluded-namespace)") == 8


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
    assert "    +  initContainers:" in sections[0]


def test_explain_of_a_denied_workload_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    path = MANIFESTS / "denied.yaml"
    assert run("explain", "-f", str(path)) == 1
    output = capsys.readouterr()
    assert "  decision: denied\n  reason: invalid-annotation: annotation " in output.out
    assert output.err.startswith(f"error: {path} document 1: Deployment/noisy: denied ")


def test_files_are_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run("inject")
    assert exit_.value.code == 2
    assert "-f/--filename" in capsys.readouterr().err
