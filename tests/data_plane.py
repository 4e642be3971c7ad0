"""Injected Pods for the Pod sandbox, and the images that stand for theirs."""

import http.client
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonpatch
from lines import lines
from pod_sandbox import (
    Image,
    PodSandbox,
    SocketFactory,
    envoy_image,
    iptables_image,
    python_image,
)

from injector.core.config import InjectorConfig
from injector.core.engine import Injector

Json = dict[str, Any]

TRAFFIC_APP = str(Path(__file__).with_name("traffic_app.py"))
APP_IMAGE = "registry.example/traffic-app:1"
APP_UID = APP_GID = 1000
APP_HTTP_PORT = 8080


def app_container(name: str = "app") -> Json:
    """The traffic application (tests/traffic_app.py) as a container, run as its own uid."""
    return {
        "name": name,
        "image": APP_IMAGE,
        "args": ["$(POD_IPS)"],
        "env": [{"name": "POD_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}}],
        "ports": [{"containerPort": APP_HTTP_PORT, "name": "http"}],
        # An HTTP probe: through the proxy, a TCP probe would pass as soon as the proxy accepts.
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
        "securityContext": {"runAsUser": APP_UID, "runAsGroup": APP_GID},
    }


def app_pod(annotations: dict[str, str] | None = None, **spec: Any) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "traffic", "namespace": "shop", "annotations": annotations or {}},
        "spec": {"containers": [app_container()], **spec},
    }


def inject(pod: Json, config: InjectorConfig | None = None) -> Json:
    """The Pod as the API server stores it once the injector's patch is applied."""
    config = config or InjectorConfig()
    outcome = Injector(config).evaluate(pod, pod["metadata"].get("namespace", "default"))
    assert outcome.decision == "injected", outcome
    patched = jsonpatch.apply_patch(pod, list(outcome.operations))
    return patched


def images(config: InjectorConfig | None = None, **more: Image) -> dict[str, Image]:
    config = config or InjectorConfig()
    return {
        config.init.image: iptables_image(),
        config.proxy.image: envoy_image(),
        APP_IMAGE: python_image(TRAFFIC_APP),
        **more,
    }


def start_node_app(sandbox: PodSandbox) -> None:
    """The traffic application in the node's namespace, listening on the node's addresses."""
    addresses = ",".join(sandbox.net.node_ips)
    process = sandbox.run_on_node([sys.executable, "-B", TRAFFIC_APP, addresses])
    assert process.stdout is not None
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=60)
    if line != [b"ready\n"]:
        raise RuntimeError(f"the node's traffic app did not start: {line}")


@dataclass(frozen=True)
class Fetched:
    status: int
    body: bytes
    client: tuple[str, int]  # the client's own address and port

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(sockets: SocketFactory, host: str, port: int, path: str = "/") -> Fetched:
    """An HTTP GET over a socket of the given factory (a namespace, a uid)."""
    connection = _Connection(host, port, sockets)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return Fetched(response.status, response.read(), connection.client)
    finally:
        connection.close()


class _Connection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, sockets: SocketFactory):
        super().__init__(host, port, timeout=30)
        self._sockets = sockets
        self.client: tuple[str, int] = ("", 0)

    def connect(self) -> None:
        self.sock = self._sockets.connect((self.host, self.port), self.timeout)
        self.client = self.sock.getsockname()[:2]


def access_log(sandbox: PodSandbox, container: str = "mesh-proxy") -> list[Json]:
    """The proxy's access log so far: one JSON object per complete line of its stdout."""
    text = sandbox.stdout(container)
    return [json.loads(line) for line in lines(text[: text.rfind("\n") + 1])]


def wait_for_access_log(
    sandbox: PodSandbox, matches: Callable[[Json], bool], container: str = "mesh-proxy"
) -> Json:
    """The first access log entry that matches, once the proxy has written it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [entry for entry in access_log(sandbox, container) if matches(entry)]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no such access log entry in {access_log(sandbox, container)}")


def address(host: str, port: int) -> str:
    """An address as Envoy's access log writes it: 10.244.0.2:8080, [fd00:10:244::2]:8080."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
