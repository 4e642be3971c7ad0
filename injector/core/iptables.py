"""The ruleset that sends a Pod's TCP traffic through the proxy, for IPv4 and IPv6 alike.

Outbound TCP from every uid but the proxy's goes to the outbound port; inbound TCP to the Pod
goes to the inbound port. Loopback, the proxy's own traffic, the ports it serves to others
(health, metrics), outbound connections to IPv6 link-local addresses and the configured
exclusions are left alone; a direct connection to its capture or admin ports is itself
captured.

One text serves both families: `iptables-restore` applies it to IPv4 and `ip6tables-restore`
to IPv6, one init container each. Every rule is the same in both, except an excluded CIDR,
which belongs to one family and carries that family's option: iptables-restore ignores a rule
marked `-6` and ip6tables-restore one marked `-4`, which "allows IPv4 and IPv6 rules in a single
rule file for use with both iptables-restore and ip6tables-restore" (iptables(8), `-4, --ipv4`).
The option comes first on its line, so the other family's tool skips the line before it parses
an address it cannot read.
"""

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from injector.core.config import InjectorConfig

# iptables' option marking a rule as one family's (iptables(8), `-4, --ipv4` and `-6, --ipv6`).
FAMILY_OPTION = {"IPv4": "-4", "IPv6": "-6"}
IPV6_LINK_LOCAL = "fe80::/10"  # RFC 4291 section 2.5.6


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
    exclude_outbound_cidrs: tuple[str, ...]  # IPv4 and IPv6 networks, each for its family
    ip_families: tuple[str, ...]  # the families captured: IPv4, IPv6 or both

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
            ip_families=interception.ip_families,
        )


def _unique(ports: Iterable[int]) -> list[int]:
    return sorted(set(ports))


def family(cidr: str) -> str:
    """IPv4 or IPv6: the family of a network such as 10.0.0.0/8 or fd00::/8."""
    return f"IPv{ipaddress.ip_network(cidr).version}"


def ruleset(interception: Interception) -> str:
    """The `iptables-restore` and `ip6tables-restore` input (nat table), one rule a line, ending
    in a newline. An excluded CIDR of a family that is not captured is left out."""
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
    if "IPv6" in i.ip_families:
        # An IPv6 link-local destination stays on its link: redirected, a connection to one
        # never reaches the proxy, which could not reach the link either.
        rules.append(f"-6 -A MESH_OUTPUT -d {IPV6_LINK_LOCAL} -j RETURN")
    for port in _unique(i.exclude_outbound_ports):
        rules.append(f"-A MESH_OUTPUT -p tcp --dport {port} -j RETURN")
    for cidr in sorted(set(i.exclude_outbound_cidrs), key=lambda cidr: (family(cidr), cidr)):
        if family(cidr) in i.ip_families:
            rules.append(f"{FAMILY_OPTION[family(cidr)]} -A MESH_OUTPUT -d {cidr} -j RETURN")
    rules += [
        "-A MESH_OUTPUT -j MESH_REDIRECT",
        f"-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports {i.outbound_port}",
        "COMMIT",
    ]
    return "\n".join(rules) + "\n"
