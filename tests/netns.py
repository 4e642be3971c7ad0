"""Network namespaces joined by veth pairs, with TCP listeners and clients running inside them.

Every listener answers each connection with one JSON line saying who accepted it: its name,
the local address, the peer and the original destination (SO_ORIGINAL_DST, or
IP6T_SO_ORIGINAL_DST for IPv6), so the client's output shows exactly where its connection ended
up. Listeners take IPv4 and IPv6 alike; addresses are given as `host` or `host/prefix` in either
family.
"""

import ipaddress
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from functools import cache

from processes import end_group, start_group

TIMEOUT = 5.0

Address = tuple[str, int]


class CommandFailed(RuntimeError):
    pass


def run(args: list[str], stdin: str | None = None, timeout: float = TIMEOUT) -> str:
    """Runs a command, returning its stdout; failing, raises with its stderr."""
    result = subprocess.run(
        args, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise CommandFailed(f"{' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here (not root, no tools, not permitted), or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces and apply iptables rules"
    for tool in ("ip", "setpriv"):
        if shutil.which(tool) is None:
            return f"needs the {tool} command"
    probe = f"probe-{secrets.token_hex(4)}"
    try:
        run(["ip", "netns", "add", probe])
    except (CommandFailed, OSError) as error:
        return f"cannot create a network namespace (an unprivileged container?): {error}"
    run(["ip", "netns", "delete", probe])
    return None


@dataclass(frozen=True)
class Netns:
    name: str

    def command(
        self,
        args: list[str],
        uid: int | None = None,
        gid: int | None = None,
        groups: tuple[int, ...] = (),
    ) -> list[str]:
        """The command line running args in this namespace, as uid:gid (and groups) when given."""
        assert (uid is None) == (gid is None), "give both uid and gid, or neither"
        prefix = ["ip", "netns", "exec", self.name]
        if uid is not None:
            supplementary = f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups"
            prefix += ["setpriv", f"--reuid={uid}", f"--regid={gid}", supplementary]
        return prefix + args

    def run(self, args: list[str], stdin: str | None = None) -> str:
        return run(self.command(args), stdin)

    def ip(self, *args: str) -> None:
        run(["ip", "-n", self.name, *args])


def create_netns(role: str) -> Netns:
    netns = Netns(f"mesh-{role}-{secrets.token_hex(3)}")
    run(["ip", "netns", "add", netns.name])
    return netns


def delete_netns(netns: Netns) -> None:
    run(["ip", "netns", "delete", netns.name])


def disable_ipv6(netns: Netns) -> None:
    """Turns IPv6 off on every interface of the namespace, present and future, as a container
    runtime does for a Pod without IPv6 (the kernel keeps IPv6, the namespace has none)."""
    for interface in ("all", "default", "lo"):
        netns.run(["sysctl", "-q", "-w", f"net.ipv6.conf.{interface}.disable_ipv6=1"])


def add_address(netns: Netns, cidr: str, device: str = "eth0") -> None:
    """Adds an IPv4 or IPv6 address; an IPv6 one is usable at once (no duplicate detection)."""
    ipv6 = ipaddress.ip_interface(cidr).version == 6
    netns.ip("addr", "add", cidr, "dev", device, *(["nodad"] if ipv6 else []))


def link_local_address(netns: Netns, device: str = "eth0") -> str:
    """The IPv6 link-local address of a device, with its scope: `fe80::…%eth0`."""
    output = run(
        ["ip", "-n", netns.name, "-6", "-o", "addr", "show", "dev", device, "scope", "link"]
    )
    return f"{output.split()[3].split('/')[0]}%{device}"


def connect(
    a: Netns, a_cidrs: list[str], b: Netns, b_cidrs: list[str], device: str = "eth0"
) -> None:
    """Joins two namespaces with a veth pair named `device` on both ends, up and addressed.
    Without duplicate address detection, the IPv6 link-local addresses are usable at once."""
    for netns in (a, b):
        netns.run(["sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=0"])
    a.ip("link", "add", device, "type", "veth", "peer", "name", device, "netns", b.name)
    for netns, cidrs in ((a, a_cidrs), (b, b_cidrs)):
        for cidr in cidrs:
            add_address(netns, cidr, device)
        netns.ip("link", "set", device, "up")
        netns.ip("link", "set", "lo", "up")


@cache
def _interpreter() -> str:
    # Under a system path rather than a virtualenv that an unprivileged uid may not reach.
    return shutil.which("python3", path=os.defpath) or os.path.realpath(sys.executable)


# Listens on each port given, on 0.0.0.0 and on :: (IPv6 only), and answers every connection
# with one JSON line (serve), or connects and prints the answer, or the error (dial). Only what
# starts fast is imported.
_PROGRAM = r"""
import json, selectors, socket, sys

# linux/netfilter_ipv4.h SO_ORIGINAL_DST at level SOL_IP, giving a struct sockaddr_in;
# linux/netfilter_ipv6/ip6_tables.h IP6T_SO_ORIGINAL_DST at SOL_IPV6, a struct sockaddr_in6.
SO_ORIGINAL_DST = IP6T_SO_ORIGINAL_DST = 80


def original_dst(conn):
    try:
        if conn.family == socket.AF_INET6:
            raw = conn.getsockopt(socket.IPPROTO_IPV6, IP6T_SO_ORIGINAL_DST, 28)
            host = socket.inet_ntop(socket.AF_INET6, raw[8:24])
        else:
            raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            host = socket.inet_ntop(socket.AF_INET, raw[4:8])
    except OSError:
        return None
    return host, int.from_bytes(raw[2:4], "big")


def listen(family, host, port):
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, int(port)))
    sock.listen(16)
    return sock


def serve(name, *ports):
    selector = selectors.DefaultSelector()
    for port in ports:
        selector.register(listen(socket.AF_INET, "0.0.0.0", port), selectors.EVENT_READ)
        selector.register(listen(socket.AF_INET6, "::", port), selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            conn, peer = key.fileobj.accept()
            with conn:
                report = {
                    "listener": name,
                    "local": conn.getsockname()[:2],
                    "peer": peer[:2],
                    "original_dst": original_dst(conn),
                }
                conn.sendall(json.dumps(report).encode() + b"\n")


def dial(host, port):
    try:
        with socket.create_connection((host, int(port)), timeout=2) as sock:
            reply = sock.makefile("rb").readline().decode().strip()
    except OSError as error:
        reply = json.dumps({"error": str(error)})
    print(reply or json.dumps({"error": "the listener sent nothing"}))


{"serve": serve, "dial": dial}[sys.argv[1]](*sys.argv[2:])
"""


def _program_command(*args: str) -> list[str]:
    # The source goes on the command line so that no uid needs to read the test tree.
    return [_interpreter(), "-I", "-S", "-c", _PROGRAM, *args]


@dataclass(frozen=True)
class Listener:
    """A process listening on 0.0.0.0 and :: at each of its ports; start several, then wait for
    each."""

    name: str
    ports: list[int]
    process: subprocess.Popen

    def wait_until_ready(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            ready = selector.select(TIMEOUT) and self.process.stdout.readline() == "ready\n"
        if not ready:
            stderr = self.stop()
            raise CommandFailed(f"listener {self.name} on {self.ports} failed: {stderr.strip()}")

    def stop(self) -> str:
        """Ends the listener's process group; returns what it wrote to stderr."""
        end_group(self.process, signal.SIGKILL)
        with self.process.stdout, self.process.stderr:
            return self.process.stderr.read()


def start_listener(netns: Netns, name: str, ports: list[int], uid: int, gid: int) -> Listener:
    process = start_group(
        netns.command(_program_command("serve", name, *map(str, ports)), uid, gid),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Listener(name, ports, process)


@dataclass(frozen=True)
class Reply:
    """What the listener that accepted a connection saw."""

    listener: str
    local: Address
    peer: Address
    original_dst: Address | None  # None when conntrack has no entry for the connection


def dial(
    netns: Netns,
    host: str,
    port: int,
    uid: int | None = None,
    gid: int | None = None,
    groups: tuple[int, ...] = (),
) -> Reply:
    """Connects from inside netns, as uid:gid (and groups) when given, and returns who accepted."""
    output = run(netns.command(_program_command("dial", host, str(port)), uid, gid, groups))
    fields = json.loads(output)
    if "error" in fields:
        raise ConnectionError(
            f"{host}:{port} from {netns.name} as uid {uid or 0}: {fields['error']}"
        )
    return Reply(
        listener=fields["listener"],
        local=tuple(fields["local"]),
        peer=tuple(fields["peer"]),
        original_dst=tuple(fields["original_dst"]) if fields["original_dst"] else None,
    )
