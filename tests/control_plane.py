"""Driving the test xDS control plane (tests/xds_control_plane.py) from a test, and the Envoy
resources it serves.

The control plane runs in its own environment (.venv-xds, see requirements-xds.txt) as its own
process, possibly in another network namespace; `ControlPlane` sends it commands and waits,
with generous deadlines, for the events it reports.
"""

import ipaddress
import json
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
XDS_PYTHON = REPO / ".venv-xds" / "bin" / "python"
SERVER = Path(__file__).with_name("xds_control_plane.py")
DEADLINE = 60.0  # seconds: the machine is shared, and Envoy reconnects with a growing backoff

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"

Json = dict[str, Any]


class ControlPlane:
    """A running control plane process and the events it has reported."""

    def __init__(self, process: subprocess.Popen):
        self._process = process
        self._events: list[Json] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port: int = self.wait_for(lambda e: e["event"] == "serving", "serving")["port"]

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = {"event": "unreadable", "line": line}
            with self._changed:
                self._events.append(event)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def events(self) -> list[Json]:
        with self._changed:
            return list(self._events)

    def wait_for(
        self, matches: Callable[[Json], bool], what: str, after: int = 0, timeout: float = DEADLINE
    ) -> Json:
        """The first event from index `after` on that matches, once reported."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [event for event in self._events[after:] if matches(event)]
                if found:
                    return found[0]
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._process.poll() is not None:
                    raise AssertionError(
                        f"the control plane reported no {what} within {timeout} s "
                        f"(exit code {self._process.poll()}); events: {self._events[after:]}"
                    )
                self._changed.wait(min(remaining, 1.0))

    def _command(self, command: Json) -> int:
        """Sends a command; the index of the next event, from which to wait for its answer."""
        mark = len(self.events)
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        return mark

    def set(self, listeners: Sequence[Json] = (), clusters: Sequence[Json] = ()) -> str:
        """Serves this configuration from now on, pushed on every open stream; its version."""
        mark = self._command(
            {"command": "set", "resources": {LISTENER: list(listeners), CLUSTER: list(clusters)}}
        )
        return self.wait_for(lambda e: e["event"] == "set", "set", after=mark)["version"]

    def stop(self) -> None:
        mark = self._command({"command": "stop"})
        self.wait_for(lambda e: e["event"] == "stopped", "stop", after=mark)

    def start(self) -> None:
        mark = self._command({"command": "start"})
        self.wait_for(lambda e: e["event"] == "serving", "serving", after=mark)

    def streams(self) -> list[Json]:
        """The `stream` events: each ADS stream opened, with the node and the identity."""
        return [event for event in self.events if event["event"] == "stream"]

    def wait_for_stream(self, after: int = 0, accepted: bool = True) -> Json:
        return self.wait_for(
            lambda e: e["event"] == "stream" and e["accepted"] is accepted,
            f"{'accepted' if accepted else 'refused'} stream",
            after=after,
        )

    def wait_for_ack(self, type_url: str, version: str, after: int = 0) -> Json:
        """Envoy's acknowledgement of a version of one resource type."""
        return self.wait_for(
            lambda e: (
                e["event"] == "request"
                and e["type_url"] == type_url
                and e["version_info"] == version
                and e["response_nonce"]
                and e["error"] is None
            ),
            f"ACK of {type_url} version {version}",
            after=after,
        )

    def wait_for_nack(self, type_url: str, after: int = 0) -> Json:
        return self.wait_for(
            lambda e: e["event"] == "request" and e["type_url"] == type_url and e["error"],
            f"NACK of {type_url}",
            after=after,
        )

    def close(self) -> None:
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._reader.join(timeout=10)


@contextmanager
def run_control_plane(
    host: str = "127.0.0.1",
    port: int = 0,
    tls: tuple[Path, Path] | None = None,
    issuer_key: Path | None = None,
    audience: str | None = None,
    wrap: Callable[[list[str]], list[str]] = lambda argv: argv,
    stderr: Path | None = None,
) -> Iterator[ControlPlane]:
    """The control plane serving on `host` and `port` (0: chosen by the system) until the
    block ends.

    `tls` is (certificate chain, key) to serve TLS; `issuer_key` and `audience` make it accept
    only tokens that key signed for that audience; `wrap` turns the command line into one that
    runs it elsewhere (another network namespace).
    """
    if not XDS_PYTHON.exists():
        raise RuntimeError(f"{XDS_PYTHON} is missing: `make test` creates it")
    argv = [str(XDS_PYTHON), "-B", str(SERVER), "--host", host, "--port", str(port)]
    if tls is not None:
        argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    if issuer_key is not None:
        argv += ["--issuer-key", str(issuer_key), "--audience", str(audience)]
    error_file = open(stderr, "wb") if stderr is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            wrap(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=error_file,
            text=True,
        )
    finally:
        if stderr is not None:
            error_file.close()
    control_plane = None
    try:
        control_plane = ControlPlane(process)
        yield control_plane
    finally:
        if control_plane is not None:
            control_plane.close()
        elif process.poll() is None:
            process.kill()
            process.wait(timeout=10)


# --- resources ------------------------------------------------------------------------------


def _typed(type_name: str, **fields: Any) -> Json:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def _address(host: str, port: int) -> Json:
    return {"socket_address": {"address": host, "port_value": port}}


def static_cluster(name: str, host: str, port: int) -> Json:
    """A cluster of one endpoint."""
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "5s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(host, port)}}]}],
        },
    }


def tcp_listener(name: str, host: str, port: int, cluster: str) -> Json:
    """A listener passing TCP connections on to a cluster."""
    return {
        "name": name,
        "address": _address(host, port),
        "filter_chains": [{"filters": [tcp_proxy(name, cluster)]}],
    }


def tcp_proxy(stat_prefix: str, cluster: str) -> Json:
    return {
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": _typed(
            "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            stat_prefix=stat_prefix,
            cluster=cluster,
        ),
    }


def original_destination_cluster(name: str) -> Json:
    """A cluster connecting to each connection's original destination."""
    return {
        "name": name,
        "type": "ORIGINAL_DST",
        "lb_policy": "CLUSTER_PROVIDED",
        "connect_timeout": "5s",
    }


# The address that takes every connection of a family: Envoy binds :: IPv6-only (no
# `ipv4_compat`), so each family needs its own.
ANY_ADDRESS = {"IPv4": "0.0.0.0", "IPv6": "::"}


def capture_listener(
    name: str, port: int, filter_chains: list[Json], ip_families: Sequence[str]
) -> Json:
    """A listener on a capture port for each captured family (0.0.0.0 for IPv4, :: for IPv6;
    the second an `additional_addresses` entry), reading the original destination of what
    iptables redirected to it (`envoy.filters.listener.original_dst`)."""
    addresses = [_address(ANY_ADDRESS[family], port) for family in ip_families]
    listener: Json = {"name": name, "address": addresses[0]}
    if addresses[1:]:
        listener["additional_addresses"] = [{"address": address} for address in addresses[1:]]
    return {
        **listener,
        "listener_filters": [
            {
                "name": "envoy.filters.listener.original_dst",
                "typed_config": _typed(
                    "envoy.extensions.filters.listener.original_dst.v3.OriginalDst"
                ),
            }
        ],
        "filter_chains": filter_chains,
    }


def mesh_configuration(
    interception: Json,
    virtual_ips: Sequence[str],
    virtual_port: int,
    backend: tuple[str, int],
) -> dict[str, list[Json]]:
    """What a mesh serves a Pod, for what its proxy said its rules capture (the node
    metadata's `INTERCEPTION`: `IP_FAMILIES`, `OUTBOUND_PORT`, `INBOUND_PORT`): its outbound
    connections to a virtual address (nothing listens there) go to a backend, every other
    connection to its original destination; inbound connections reach the application. The
    `listeners` and `clusters` of `ControlPlane.set`."""
    families = interception["IP_FAMILIES"]
    # Numbers in node metadata (a protobuf Struct) arrive as floating point.
    outbound_port, inbound_port = (
        int(interception[key]) for key in ("OUTBOUND_PORT", "INBOUND_PORT")
    )
    routed = {
        "filter_chain_match": {
            "prefix_ranges": [
                {"address_prefix": ip, "prefix_len": ipaddress.ip_address(ip).max_prefixlen}
                for ip in virtual_ips
            ],
            "destination_port": virtual_port,
        },
        "filters": [tcp_proxy("outbound_service", "service")],
    }
    return {
        "listeners": [
            capture_listener(
                "outbound",
                outbound_port,
                [routed, {"filters": [tcp_proxy("outbound", "original_destination")]}],
                families,
            ),
            capture_listener(
                "inbound",
                inbound_port,
                [{"filters": [tcp_proxy("inbound", "original_destination")]}],
                families,
            ),
        ],
        "clusters": [
            static_cluster("service", *backend),
            original_destination_cluster("original_destination"),
        ],
    }


# Answers every connection with its name (argv[2]), on argv[1] (an IPv4 or IPv6 address) and
# a port of the system's choosing, which it prints first.
_NAME_SERVER = r"""
import contextlib, socket, sys

listener = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
listener.bind((sys.argv[1], 0))
listener.listen(64)
print(listener.getsockname()[1], flush=True)
while True:
    connection, _ = listener.accept()
    with connection, contextlib.suppress(OSError):
        connection.sendall(sys.argv[2].encode())
"""


def start_name_server(run: Callable[[list[str]], subprocess.Popen], host: str, name: str) -> int:
    """Starts, with `run` (which owns the process and stops it), a server answering every
    connection with `name`; its port."""
    process = run([sys.executable, "-I", "-c", _NAME_SERVER, host, name])
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], DEADLINE)
    line = process.stdout.readline() if ready else b""
    if not line.strip().isdigit():
        raise RuntimeError(f"the name server {name} did not start: {line!r}")
    return int(line)
