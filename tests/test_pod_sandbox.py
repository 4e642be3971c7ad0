"""The Pod sandbox runs a Pod as the kubelet would, refuses what it cannot, and leaves nothing."""

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pod_sandbox import (
    Image,
    NotFaithful,
    PodFailed,
    PodSandbox,
    expand,
    python_image,
    python_program_image,
    unavailable_reason,
)

SHELL = "registry.example/shell:1"  # the host's /bin/sh and coreutils under the overlay
IMAGES = {SHELL: Image()}
LISTENER = "registry.example/listener:1"
# Listens on 127.0.0.1:9000 after a second, answering HTTP GETs with 200.
LISTENER_PROGRAM = r"""
import http.server, time

time.sleep(1)
http.server.HTTPServer(("0.0.0.0", 9000), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$(A)", "alpha"),
        ("x-$(A)-$(B)", "x-alpha-beta"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$alpha"),
        ("$(MISSING)", "$(MISSING)"),
        ("$(A", "$(A"),
        ("a$b", "a$b"),
        ("a$$b", "a$b"),
        ("$", "$"),
        ("$$", "$"),
        ("$()", "$()"),
        ("$(A)$(A)", "alphaalpha"),
    ],
)
def test_expansion_follows_kubernetes(text: str, expanded: str) -> None:
    assert expand(text, {"A": "alpha", "B": "beta"}) == expanded


@pytest.fixture(scope="module")
def usable() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


def shell(name: str, script: str, **fields: object) -> dict:
    return {"name": name, "image": SHELL, "command": ["sh", "-c", script], **fields}


def pod(init: list[dict], containers: list[dict], volumes: list[dict] | None = None) -> dict:
    return {
        "metadata": {
            "generateName": "probe-",
            "labels": {"app": "probe"},
            "annotations": {"example.com/note": "from the annotation"},
        },
        "spec": {
            "initContainers": init,
            "containers": containers,
            "volumes": [{"name": "out", "emptyDir": {}}, *(volumes or ())],
        },
    }


OUT = {"name": "out", "mountPath": "/out"}
RECORD = 'echo "$(id -u):$(id -g):$(id -G)" > /out/$0; '  # $0: sh -c's first argument


@pytest.mark.root
def test_init_containers_run_in_order_with_their_identity_env_and_volumes(usable: None) -> None:
    downward = {
        "name": "info",
        "downwardAPI": {
            "items": [
                {
                    "path": "note",
                    "fieldRef": {"fieldPath": "metadata.annotations['example.com/note']"},
                },
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            ]
        },
    }
    first = shell(
        "first",
        RECORD + 'echo "$GREETING" > /out/greeting; cat /info/note > /out/note; '
        "touch /etc/written 2> /out/read-only || true",
        env=[
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "GREETING", "value": "hello $(NAME) from $(POD_IP) $$(NAME)"},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ],
        volumeMounts=[OUT, {"name": "info", "mountPath": "/info"}],
        securityContext={"runAsUser": 4321, "runAsGroup": 4322, "readOnlyRootFilesystem": True},
    )
    first["command"].append("first")
    second = shell("second", "cat /out/greeting > /out/second-saw; " + RECORD, volumeMounts=[OUT])
    second["command"].append("second")
    main = shell("main", "sleep 600", volumeMounts=[OUT])
    with PodSandbox(pod([first, second], [main], [downward]), IMAGES) as sandbox:
        sandbox.start()
        out = sandbox.dir / "volumes" / "out"
        name = sandbox.pod["metadata"]["name"]
        assert name.startswith("probe-")
        assert (out / "first").read_text() == "4321:4322:4322\n"
        assert (out / "second").read_text() == "0:0:0\n"
        assert (out / "greeting").read_text() == f"hello {name} from $(POD_IP) $(NAME)\n"
        assert (out / "second-saw").read_text() == (out / "greeting").read_text()
        assert (out / "note").read_text() == "from the annotation"
        assert "Read-only file system" in (out / "read-only").read_text()
        assert sandbox.running("main")
    assert not Path("/etc/written").exists()


@pytest.mark.root
def test_a_native_sidecar_startup_probe_gates_the_next_init_container(usable: None) -> None:
    sidecar = {
        "name": "sidecar",
        "image": LISTENER,
        "restartPolicy": "Always",
        "startupProbe": {"httpGet": {"path": "/", "port": 9000}, "periodSeconds": 1},
    }
    # bash's /dev/tcp connects, failing unless the port listens.
    after = {
        "name": "after",
        "image": SHELL,
        "command": ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9000"],
    }
    images = {**IMAGES, LISTENER: python_program_image(LISTENER_PROGRAM)}
    with PodSandbox(pod([sidecar, after], [shell("main", "sleep 600")]), images) as sandbox:
        sandbox.start()
        records = sandbox.probe_records("sidecar", "startup")
        assert [r.success for r in records][-1] is True
        assert not records[0].success  # it started listening after a second
        assert sandbox.containers["after"].process.returncode == 0


@pytest.mark.root
def test_a_failing_init_container_fails_the_pod(usable: None) -> None:
    failing = shell("failing", "echo broken >&2; exit 3")
    with (
        PodSandbox(pod([failing], [shell("main", "sleep 600")]), IMAGES) as sandbox,
        pytest.raises(PodFailed, match="init container failing exited 3: broken"),
    ):
        sandbox.start()


@pytest.mark.root
def test_run_as_non_root_refuses_root(usable: None) -> None:
    root = shell("root", "true", securityContext={"runAsNonRoot": True})
    with (
        PodSandbox(pod([root], [shell("main", "sleep 600")]), IMAGES) as sandbox,
        pytest.raises(PodFailed, match="runAsNonRoot"),
    ):
        sandbox.start()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["spec"]["containers"][0].update(image="unknown:1"), "nothing standing for"),
        (lambda p: p["spec"]["containers"][0].pop("command"), "entrypoint"),
        (
            lambda p: p["spec"]["volumes"].append({"name": "c", "configMap": {"name": "c"}}),
            "configMap",
        ),
        (
            lambda p: p["spec"]["containers"][0].update(
                readinessProbe={"exec": {"command": ["true"]}}
            ),
            "readinessProbe",
        ),
        (
            lambda p: p["spec"]["containers"][0].update(
                lifecycle={"postStart": {"exec": {"command": ["true"]}}}
            ),
            "lifecycle",
        ),
        (
            lambda p: p["spec"]["containers"][0].update(
                env=[{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
            ),
            "secretKeyRef",
        ),
        (lambda p: p["spec"].update(hostNetwork=True), "hostNetwork"),
    ],
)
@pytest.mark.root
def test_what_it_cannot_run_faithfully_fails_loudly(usable: None, change, message: str) -> None:
    spec = pod([], [shell("main", "sleep 600", volumeMounts=[OUT])])
    change(spec)
    with pytest.raises(NotFaithful, match=message), PodSandbox(spec, IMAGES) as sandbox:
        sandbox.start()


def _netns_names() -> set[str]:
    return set(
        subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True
        ).stdout.split()
    )


@pytest.fixture
def nothing_left_behind(usable: None) -> Iterator[list[PodSandbox]]:
    before = _netns_names()
    sandboxes: list[PodSandbox] = []
    yield sandboxes
    for sandbox in sandboxes:
        assert not sandbox.dir.exists()
        assert sandbox.net.pod_netns not in _netns_names()
        assert sandbox.net.node_netns not in _netns_names()
        for container in sandbox.containers.values():
            assert container.process is None or container.process.poll() is not None
    assert {n for n in _netns_names() - before if n.startswith("sandbox-")} == set()


@pytest.mark.root
def test_everything_is_removed_also_when_the_test_fails(
    nothing_left_behind: list[PodSandbox],
) -> None:
    spec = pod([shell("first", "true")], [shell("main", "sleep 600", volumeMounts=[OUT])])
    with pytest.raises(RuntimeError, match="the test failed"), PodSandbox(spec, IMAGES) as sandbox:
        nothing_left_behind.append(sandbox)
        sandbox.start()
        assert sandbox.running("main")
        raise RuntimeError("the test failed")


@pytest.mark.root
def test_exec_runs_in_the_container_as_its_user(usable: None) -> None:
    app = "registry.example/app:1"
    spec = pod(
        [],
        [
            {
                "name": "main",
                "image": app,
                "command": ["sleep", "600"],
                "env": [{"name": "MODE", "value": "exec"}],
                "securityContext": {"runAsUser": 1000, "runAsGroup": 1001},
            }
        ],
    )
    with PodSandbox(spec, {app: python_image(__file__)}) as sandbox:
        sandbox.start()
        report = sandbox.exec(
            "main",
            ["sh", "-c", 'echo "{\\"id\\": \\"$(id -u):$(id -g)\\", \\"mode\\": \\"$MODE\\"}"'],
        )
        assert json.loads(report) == {"id": "1000:1001", "mode": "exec"}
        assert sandbox.exec("main", ["ls", "/opt/app"]).split() == ["main.py"]
