"""Properties of the ruleset over generated interception settings, with real iptables.

For every configuration the model accepts, the ruleset loads with `iptables-restore --test` and
`ip6tables-restore --test` on both backends (nft and legacy), and once applied, each family
holds the excluded CIDRs of its own family and of no other (IPv6 also the link-local network),
none when it is not captured. Everything runs in one network namespace of its own.
"""

import ipaddress
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lines import lines
from netns import Netns, create_netns, delete_netns, unavailable_reason

from injector.core.config import InjectorConfig
from injector.core.iptables import IPV6_LINK_LOCAL, Interception, ruleset

pytestmark = pytest.mark.root

RESTORE = {
    ("nft", "IPv4"): "iptables-nft-restore",
    ("nft", "IPv6"): "ip6tables-nft-restore",
    ("legacy", "IPv4"): "iptables-legacy-restore",
    ("legacy", "IPv6"): "ip6tables-legacy-restore",
}
SAVE = {"IPv4": "iptables-nft-save", "IPv6": "ip6tables-nft-save"}
IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")

ports = st.integers(min_value=1, max_value=65535)
port_lists = st.lists(ports, max_size=6)
ipv4_networks = st.builds(
    lambda address, prefix: ipaddress.ip_network(f"{address}/{prefix}", strict=False),
    st.ip_addresses(v=4),
    st.integers(min_value=0, max_value=32),
)
ipv6_networks = st.builds(
    lambda address, prefix: ipaddress.ip_network(f"{address}/{prefix}", strict=False),
    st.ip_addresses(v=6),
    st.integers(min_value=0, max_value=128),
).filter(lambda network: not network.subnet_of(IPV4_MAPPED))


def cidr_text(network: ipaddress.IPv4Network | ipaddress.IPv6Network, draw: st.DrawFn) -> str:
    """A network as a user could write it: canonical, exploded, or with host bits set."""
    form = draw(st.sampled_from(["canonical", "exploded", "host"]))
    if form == "exploded":
        return network.exploded
    if form == "host" and network.num_addresses > 1:
        return f"{network.network_address + 1}/{network.prefixlen}"
    return str(network)


@st.composite
def configurations(draw: st.DrawFn) -> dict[str, Any]:
    """A configuration's proxy identity, ports and interception settings."""
    proxy_ports = draw(st.lists(ports, min_size=5, max_size=5, unique=True))
    networks = draw(st.lists(st.one_of(ipv4_networks, ipv6_networks), max_size=8))
    families = draw(st.lists(st.sampled_from(["IPv4", "IPv6"]), min_size=1, max_size=2))
    include = draw(st.one_of(st.just("*"), port_lists))
    return {
        "proxy": {
            "uid": draw(st.integers(min_value=1, max_value=2147483647)),
            "gid": draw(st.integers(min_value=1, max_value=2147483647)),
            "ports": dict(
                zip(["outbound", "inbound", "admin", "health", "metrics"], proxy_ports, strict=True)
            ),
        },
        "interception": {
            "includeInboundPorts": include,
            "excludeInboundPorts": draw(port_lists),
            "excludeOutboundPorts": draw(port_lists),
            "excludeOutboundCidrs": [cidr_text(network, draw) for network in networks],
            "ipFamilies": families,
        },
    }


@pytest.fixture(scope="module")
def netns() -> Iterator[Netns]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    for command in (*RESTORE.values(), *SAVE.values()):
        if shutil.which(command) is None:
            pytest.skip(f"{command} is not installed")
    netns = create_netns("props")
    try:
        yield netns
    finally:
        delete_netns(netns)


def excluded_networks(
    saved: str, family: str
) -> set[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The destinations that MESH_OUTPUT returns early for, from one family's iptables-save
    output (a rule for 0.0.0.0/0 or ::/0 is saved without `-d`)."""
    any_address = "0.0.0.0/0" if family == "IPv4" else "::/0"
    networks = set()
    for line in lines(saved):
        words = line.split()
        if words[:2] != ["-A", "MESH_OUTPUT"] or words[-2:] != ["-j", "RETURN"]:
            continue
        if {"-o", "-m", "--dport"} & set(words):  # loopback, owner and port rules
            continue
        cidr = words[words.index("-d") + 1] if "-d" in words else any_address
        networks.add(ipaddress.ip_network(cidr))
    return networks


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configurations())
def test_both_rulesets_load_and_each_family_excludes_only_its_own_cidrs(
    netns: Netns, configuration: dict[str, Any]
) -> None:
    config = InjectorConfig.model_validate(configuration)
    interception = Interception.from_config(config)
    rules = ruleset(interception)

    for restore in RESTORE.values():
        netns.run([restore, "--test"], stdin=rules)

    for family in ("IPv4", "IPv6"):
        netns.run([RESTORE[("nft", family)]], stdin=rules)
        saved = netns.run([SAVE[family], "-t", "nat"])
        expected = {
            ipaddress.ip_network(cidr)
            for cidr in interception.exclude_outbound_cidrs
            if f"IPv{ipaddress.ip_network(cidr).version}" == family
            and family in interception.ip_families
        }
        if family == "IPv6" and family in interception.ip_families:
            expected.add(ipaddress.ip_network(IPV6_LINK_LOCAL))
        assert excluded_networks(saved, family) == expected, rules
