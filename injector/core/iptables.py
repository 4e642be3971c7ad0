"""The iptables-restore ruleset that sends a Pod's TCP traffic through the proxy.

Outbound TCP from every uid but the proxy's goes to the outbound port; inbound TCP to the Pod
goes to the inbound port. Loopback, the proxy's own traffic, the ports it serves to others
(health, metrics) and the configured exclusions are left alone; a direct connection to its
capture or admin ports is itself captured. The init container applies exactly this text with
iptables-restore.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from injector.core.config import InjectorConfig


@dataclass(frozen=True)
class Interception:
    """What the ruleset redirects, and what it leaves alone."""

    proxy_uid: int
    proxy_gid: int
    outbound_port: int
    inbound_port: int
    served_ports: tuple[int, ...]  # the proxy's ports that others reach directly
    include_inbound_ports: tuple[int, ...] | None  # None: every port
    exclude_inbound_ports: tuple[int, ...]
    exclude_outbound_ports: tuple[int, ...]
    exclude_outbound_cidrs: tuple[str, ...]

    @classmethod
    def from_config(cls, config: InjectorConfig) -> "Interception":
        """The interception a (Pod's effective) configuration asks for."""
        proxy, interception = config.proxy, config.interception
        include = interception.include_inbound_ports
        return cls(
            proxy_uid=proxy.uid,
            proxy_gid=proxy.gid,
            outbound_port=proxy.ports.outbound,
            inbound_port=proxy.ports.inbound,
            served_ports=(proxy.ports.health, proxy.ports.metrics),
            include_inbound_ports=None if include == "*" else include,
            exclude_inbound_ports=interception.exclude_inbound_ports,
            exclude_outbound_ports=interception.exclude_outbound_ports,
            exclude_outbound_cidrs=interception.exclude_outbound_cidrs,
        )


def _unique(ports: Iterable[int]) -> list[int]:
    return sorted(set(ports))


def ruleset(interception: Interception) -> str:
    """The `iptables-restore` input (nat table), one rule a line, ending in a newline."""
    i = interception
    rules = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        ":MESH_INBOUND - [0:0]",
        ":MESH_IN_REDIRECT - [0:0]",
        ":MESH_OUTPUT - [0:0]",
        ":MESH_REDIRECT - [0:0]",
        "-A PREROUTING -p tcp -j MESH_INBOUND",
        "-A OUTPUT -p tcp -j MESH_OUTPUT",
    ]
    # Inbound: the proxy's served ports (probes, metrics) and excluded ports reach their listener.
    for port in _unique((*i.served_ports, *i.exclude_inbound_ports)):
        rules.append(f"-A MESH_INBOUND -p tcp --dport {port} -j RETURN")
    if i.include_inbound_ports is None:
        rules.append("-A MESH_INBOUND -p tcp -j MESH_IN_REDIRECT")
    else:
        for port in _unique(i.include_inbound_ports):
            rules.append(f"-A MESH_INBOUND -p tcp --dport {port} -j MESH_IN_REDIRECT")
    rules.append(f"-A MESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports {i.inbound_port}")
    # Outbound: loopback stays inside the Pod, and the proxy's own connections leave directly.
    rules += [
        "-A MESH_OUTPUT -o lo -j RETURN",
        f"-A MESH_OUTPUT -m owner --uid-owner {i.proxy_uid} -j RETURN",
        f"-A MESH_OUTPUT -m owner --gid-owner {i.proxy_gid} -j RETURN",
    ]
    for port in _unique(i.exclude_outbound_ports):
        rules.append(f"-A MESH_OUTPUT -p tcp --dport {port} -j RETURN")
    for cidr in sorted(set(i.exclude_outbound_cidrs)):
        rules.append(f"-A MESH_OUTPUT -d {cidr} -j RETURN")
    rules += [
        "-A MESH_OUTPUT -j MESH_REDIRECT",
        f"-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports {i.outbound_port}",
        "COMMIT",
    ]
    return "\n".join(rules) + "\n"
