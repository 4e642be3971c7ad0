"""The ruleset applied with real iptables in real network namespaces, checked with real traffic.

A dual-stack Pod namespace is joined to a remote namespace by a veth pair. In the Pod, a proxy
(the proxy's uid) listens on its outbound, inbound and health ports and an application listens
on its own ports; the remote namespace has a listener of its own. Every listener takes IPv4 and
IPv6. The ruleset is applied as the init containers apply it, with iptables-restore and
ip6tables-restore; each test then checks one family's traffic (it runs once for IPv4 and once
for IPv6), and each connection is answered by whoever accepted it, so the test sees exactly
where the rules sent it. A Pod namespace with IPv6 turned off, as a container runtime leaves an
IPv4-only Pod, checks that the rules still load and IPv4 is still captured there.
"""

import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from lines import lines
from netns import (
    Netns,
    Reply,
    add_address,
    connect,
    create_netns,
    delete_netns,
    dial,
    disable_ipv6,
    link_local_address,
    run,
    start_listener,
    unavailable_reason,
)

from injector.core.config import InjectorConfig
from injector.core.engine import Injector
from injector.core.iptables import FAMILY_OPTION, Interception, ruleset
from injector.core.keys import INIT_CONTAINER, INIT_CONTAINER_IPV6
from injector.core.render import IPTABLES_DIR
from injector.kube.patch import Operation, escape

pytestmark = pytest.mark.root

PROXY = InjectorConfig().proxy
PROXY_UID, PROXY_GID = PROXY.uid, PROXY.gid
OUTBOUND, INBOUND, HEALTH = PROXY.ports.outbound, PROXY.ports.inbound, PROXY.ports.health
APP_UID = APP_GID = 1000
APP_PORTS = (8080, 8081, 9090, 7070)
REMOTE_PORTS = (80, 5432)


@dataclass(frozen=True)
class Family:
    """One IP family's addresses in the Pod and the remote namespace (canonical text forms)."""

    name: str  # IPv4 or IPv6, as the configuration names it
    pod_ip: str
    remote_ip: str
    remote_other_ip: str  # on the remote too, but in a CIDR that can be excluded
    other_cidr: str  # the CIDR holding remote_other_ip
    prefix: int  # of the link between the Pod and the remote
    loopback: str
    host_prefix: int  # a single address


IPV4 = Family("IPv4", "10.200.0.2", "10.200.0.1", "10.99.0.1", "10.99.0.0/16", 24, "127.0.0.1", 32)
IPV6 = Family("IPv6", "fd00:200::2", "fd00:200::1", "fd00:99::1", "fd00:99::/64", 64, "::1", 128)
FAMILIES = (IPV4, IPV6)

INTERCEPT_ALL = Interception(
    proxy_uid=PROXY_UID,
    proxy_gid=PROXY_GID,
    outbound_port=OUTBOUND,
    inbound_port=INBOUND,
    served_ports=(HEALTH, PROXY.ports.metrics),
    include_inbound_ports=None,
    exclude_inbound_ports=(),
    exclude_outbound_ports=(),
    exclude_outbound_cidrs=(),
    ip_families=("IPv4", "IPv6"),
)


@dataclass(frozen=True)
class Backend:
    name: str
    restore: dict[str, str]  # by family
    save: dict[str, str]

    def commands(self) -> list[str]:
        return [*self.restore.values(), *self.save.values()]


BACKENDS = [
    Backend(
        "nft",
        {"IPv4": "iptables-nft-restore", "IPv6": "ip6tables-nft-restore"},
        {"IPv4": "iptables-nft-save", "IPv6": "ip6tables-nft-save"},
    ),
    Backend(
        "legacy",
        {"IPv4": "iptables-legacy-restore", "IPv6": "ip6tables-legacy-restore"},
        {"IPv4": "iptables-legacy-save", "IPv6": "ip6tables-legacy-save"},
    ),
]
# The host's default tools, for the namespaces where the init containers' own commands run.
HOST = Backend(
    "host",
    {"IPv4": "iptables-restore", "IPv6": "ip6tables-restore"},
    {"IPv4": "iptables-save", "IPv6": "ip6tables-save"},
)


@pytest.fixture(scope="session")
def namespaces_usable() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(params=BACKENDS, ids=lambda backend: backend.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    for command in backend.commands():
        if shutil.which(command) is None:
            pytest.skip(f"{command} is not installed")
    return backend


@pytest.fixture(params=FAMILIES, ids=lambda family: family.name)
def family(request: pytest.FixtureRequest) -> Family:
    return request.param


@dataclass(frozen=True)
class Pod:
    netns: Netns
    remote: Netns
    backend: Backend

    def apply(self, rules: str) -> None:
        """Applies the ruleset to both families, as the init containers do."""
        for restore in self.backend.restore.values():
            self.netns.run([restore], stdin=rules)

    def saved_nat(self, family: str) -> str:
        return self.netns.run([self.backend.save[family], "-t", "nat"])

    def app_dials(self, host: str, port: int) -> Reply:
        return dial(self.netns, host, port, APP_UID, APP_GID)

    def remote_dials_pod(self, family: Family, port: int) -> Reply:
        return dial(self.remote, family.pod_ip, port)


@contextmanager
def pod_namespaces(backend: Backend, families: tuple[Family, ...]) -> Iterator[Pod]:
    """A Pod and a remote namespace with addresses of `families` only; without IPv6, the Pod's
    namespace has IPv6 turned off, and its listeners still listen on ::."""
    with ExitStack() as cleanup:
        pod_netns = create_netns("pod")
        cleanup.callback(delete_netns, pod_netns)
        remote = create_netns("remote")
        cleanup.callback(delete_netns, remote)
        if IPV6 not in families:
            disable_ipv6(pod_netns)
        connect(
            pod_netns,
            [f"{family.pod_ip}/{family.prefix}" for family in families],
            remote,
            [f"{family.remote_ip}/{family.prefix}" for family in families],
        )
        for family in families:
            add_address(remote, f"{family.remote_other_ip}/{family.host_prefix}")
            version = "-4" if family is IPV4 else "-6"
            pod_netns.ip(version, "route", "add", "default", "via", family.remote_ip)
        listeners = []
        for netns, name, ports, uid in (
            (remote, "remote", REMOTE_PORTS, 0),
            (pod_netns, "proxy", (OUTBOUND, INBOUND, HEALTH), PROXY_UID),
            (pod_netns, "app", APP_PORTS, APP_UID),
        ):
            listeners.append(start_listener(netns, name, list(ports), uid, uid))
            cleanup.callback(listeners[-1].stop)
        for listener in listeners:
            listener.wait_until_ready()
        yield Pod(pod_netns, remote, backend)


@pytest.fixture
def pod(namespaces_usable: None, backend: Backend) -> Iterator[Pod]:
    with pod_namespaces(backend, FAMILIES) as pod:
        yield pod


@pytest.fixture
def ipv4_only_pod(namespaces_usable: None, backend: Backend) -> Iterator[Pod]:
    with pod_namespaces(backend, (IPV4,)) as pod:
        yield pod


@pytest.fixture
def host_pod(namespaces_usable: None) -> Iterator[Pod]:
    with pod_namespaces(HOST, FAMILIES) as pod:
        yield pod


@pytest.fixture
def host_ipv4_only_pod(namespaces_usable: None) -> Iterator[Pod]:
    with pod_namespaces(HOST, (IPV4,)) as pod:
        yield pod


def assert_reached(reply: Reply, listener: str, port: int) -> None:
    assert (reply.listener, reply.local[1]) == (listener, port), reply


def assert_redirected(reply: Reply, port: int, original_dst: tuple[str, int]) -> None:
    assert_reached(reply, "proxy", port)
    assert reply.original_dst == original_dst, reply


def test_application_outbound_goes_to_the_outbound_port(pod: Pod, family: Family) -> None:
    assert_reached(pod.app_dials(family.remote_ip, 80), "remote", 80)  # without the rules

    pod.apply(ruleset(INTERCEPT_ALL))

    assert_redirected(pod.app_dials(family.remote_ip, 80), OUTBOUND, (family.remote_ip, 80))
    other = pod.app_dials(family.remote_other_ip, 5432)
    assert_redirected(other, OUTBOUND, (family.remote_other_ip, 5432))


def test_proxy_outbound_leaves_directly(pod: Pod, family: Family) -> None:
    pod.apply(ruleset(INTERCEPT_ALL))

    remote = family.remote_ip
    assert_reached(dial(pod.netns, remote, 80, PROXY_UID, PROXY_GID), "remote", 80)
    assert_reached(dial(pod.netns, remote, 80, PROXY_UID, APP_GID), "remote", 80)
    assert_reached(dial(pod.netns, remote, 80, APP_UID, PROXY_GID), "remote", 80)
    assert_redirected(pod.app_dials(remote, 80), OUTBOUND, (remote, 80))


def test_the_proxy_group_as_a_supplementary_group_does_not_bypass(pod: Pod, family: Family) -> None:
    # What a Pod's fsGroup or supplementalGroups give every container.
    pod.apply(ruleset(INTERCEPT_ALL))

    reply = dial(pod.netns, family.remote_ip, 80, APP_UID, APP_GID, groups=(PROXY_GID,))

    assert_redirected(reply, OUTBOUND, (family.remote_ip, 80))


def test_excluded_outbound_port_and_cidr_leave_directly(pod: Pod, family: Family) -> None:
    pod.apply(
        ruleset(
            replace(
                INTERCEPT_ALL,
                exclude_outbound_ports=(5432,),
                exclude_outbound_cidrs=(IPV4.other_cidr, IPV6.other_cidr),
            )
        )
    )

    assert_reached(pod.app_dials(family.remote_ip, 5432), "remote", 5432)
    assert_reached(pod.app_dials(family.remote_other_ip, 80), "remote", 80)
    assert_redirected(pod.app_dials(family.remote_ip, 80), OUTBOUND, (family.remote_ip, 80))


def test_an_excluded_cidr_leaves_only_its_own_family_alone(pod: Pod, family: Family) -> None:
    # Only the other family's CIDR is excluded: this family's other address is still captured.
    other_family = IPV6 if family is IPV4 else IPV4
    pod.apply(ruleset(replace(INTERCEPT_ALL, exclude_outbound_cidrs=(other_family.other_cidr,))))

    reply = pod.app_dials(family.remote_other_ip, 80)

    assert_redirected(reply, OUTBOUND, (family.remote_other_ip, 80))
    assert_reached(pod.app_dials(other_family.remote_other_ip, 80), "remote", 80)
    saved = pod.saved_nat(family.name)
    assert other_family.other_cidr not in saved
    assert f"-A MESH_OUTPUT -d {other_family.other_cidr} -j RETURN" in pod.saved_nat(
        other_family.name
    )


def test_outbound_to_ipv6_link_local_addresses_is_left_alone(pod: Pod) -> None:
    pod.apply(ruleset(INTERCEPT_ALL))

    remote = link_local_address(pod.remote)
    assert_reached(pod.app_dials(remote, 80), "remote", 80)
    # Inbound, the proxy can reach the application on the link: it is captured like any other.
    local = link_local_address(pod.netns)
    reply = dial(pod.remote, local, 8080)
    assert_redirected(reply, INBOUND, (local.split("%")[0], 8080))


def test_inbound_goes_to_the_inbound_port_but_health_checks_do_not(
    pod: Pod, family: Family
) -> None:
    assert_reached(pod.remote_dials_pod(family, 8080), "app", 8080)  # without the rules

    pod.apply(ruleset(INTERCEPT_ALL))

    reply = pod.remote_dials_pod(family, 8080)
    assert_redirected(reply, INBOUND, (family.pod_ip, 8080))
    assert reply.peer[0] == family.remote_ip
    assert_redirected(pod.remote_dials_pod(family, 7070), INBOUND, (family.pod_ip, 7070))
    assert_reached(pod.remote_dials_pod(family, HEALTH), "proxy", HEALTH)
    # The outbound capture port is not open to others: a direct connection is captured too.
    assert_redirected(pod.remote_dials_pod(family, OUTBOUND), INBOUND, (family.pod_ip, OUTBOUND))


def test_excluded_inbound_port_reaches_the_application(pod: Pod, family: Family) -> None:
    pod.apply(ruleset(replace(INTERCEPT_ALL, exclude_inbound_ports=(8081,))))

    assert_reached(pod.remote_dials_pod(family, 8081), "app", 8081)
    assert_redirected(pod.remote_dials_pod(family, 8080), INBOUND, (family.pod_ip, 8080))


def test_include_list_redirects_only_the_listed_inbound_ports(pod: Pod, family: Family) -> None:
    pod.apply(ruleset(replace(INTERCEPT_ALL, include_inbound_ports=(8080, 9090))))

    assert_redirected(pod.remote_dials_pod(family, 8080), INBOUND, (family.pod_ip, 8080))
    assert_redirected(pod.remote_dials_pod(family, 9090), INBOUND, (family.pod_ip, 9090))
    assert_reached(pod.remote_dials_pod(family, 7070), "app", 7070)
    assert_reached(pod.remote_dials_pod(family, HEALTH), "proxy", HEALTH)


def test_traffic_inside_the_pod_stays_inside(pod: Pod, family: Family) -> None:
    pod.apply(ruleset(INTERCEPT_ALL))

    assert_reached(pod.app_dials(family.loopback, 8080), "app", 8080)
    assert_reached(pod.app_dials(family.pod_ip, 8080), "app", 8080)  # routed over lo as well
    # The proxy hands inbound connections on to the application.
    assert_reached(dial(pod.netns, family.pod_ip, 8080, PROXY_UID, PROXY_GID), "app", 8080)
    assert_redirected(pod.app_dials(family.remote_ip, 8080), OUTBOUND, (family.remote_ip, 8080))


def annotation_from_patch(operations: Iterable[Operation], key: str) -> str:
    """The value the patch gives an annotation, whether it adds the object or the one key."""
    escaped = escape(key)
    for operation in operations:
        if operation["op"] != "add":
            continue
        if operation["path"] == f"/metadata/annotations/{escaped}":
            return operation["value"]
        if operation["path"] == "/metadata/annotations" and key in operation["value"]:
            return operation["value"][key]
    raise AssertionError(f"no operation adds the annotation {key}: {operations}")


def web_pod(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "annotations": annotations},
        "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]},
    }


def test_ruleset_from_the_engine_follows_the_pod_annotations(
    pod: Pod, family: Family, tmp_path: Path
) -> None:
    web = web_pod(
        {
            "injector.dev/exclude-outbound-ports": "5432",
            "injector.dev/exclude-outbound-cidrs": f"{IPV4.other_cidr},{IPV6.other_cidr}",
            "injector.dev/exclude-inbound-ports": "8081",
            # An excluded port stays excluded even when it is also included.
            "injector.dev/include-inbound-ports": "8080,8081,9090",
        }
    )
    outcome = Injector(InjectorConfig()).evaluate(web, "default")
    assert outcome.decision == "injected", outcome
    rules = tmp_path / "rules"
    rules.write_text(annotation_from_patch(outcome.operations, "injector.dev/iptables-rules"))

    for restore in pod.backend.restore.values():  # as the init containers do
        pod.netns.run([restore, str(rules)])

    remote = family.remote_ip
    assert_redirected(pod.app_dials(remote, 80), OUTBOUND, (remote, 80))
    assert_reached(pod.app_dials(remote, 5432), "remote", 5432)
    assert_reached(pod.app_dials(family.remote_other_ip, 80), "remote", 80)
    assert_reached(dial(pod.netns, remote, 80, PROXY_UID, PROXY_GID), "remote", 80)
    assert_redirected(pod.remote_dials_pod(family, 8080), INBOUND, (family.pod_ip, 8080))
    assert_redirected(pod.remote_dials_pod(family, 9090), INBOUND, (family.pod_ip, 9090))
    assert_reached(pod.remote_dials_pod(family, 8081), "app", 8081)
    assert_reached(pod.remote_dials_pod(family, 7070), "app", 7070)
    assert_reached(pod.remote_dials_pod(family, HEALTH), "proxy", HEALTH)


def normalized(saved: str) -> list[str]:
    """iptables-save output without its timestamped comments and packet counters."""
    return [
        re.sub(r"\[\d+:\d+\]", "[0:0]", line) for line in lines(saved) if not line.startswith("#")
    ]


def test_applying_the_ruleset_again_changes_nothing(pod: Pod, family: Family) -> None:
    rules = ruleset(
        replace(
            INTERCEPT_ALL,
            exclude_inbound_ports=(8081,),
            exclude_outbound_ports=(5432,),
            exclude_outbound_cidrs=(IPV4.other_cidr, IPV6.other_cidr),
        )
    )
    pod.apply(rules)
    first = normalized(pod.saved_nat(family.name))

    pod.apply(rules)  # the init containers restarted

    assert normalized(pod.saved_nat(family.name)) == first
    appended = [line for line in first if line.startswith("-A ")]
    # The rules of both families, and those of this family alone.
    own = rules.count(f"\n{FAMILY_OPTION[family.name]} -A ")
    assert len(appended) == rules.count("\n-A ") + own, first
    assert_redirected(pod.app_dials(family.remote_ip, 80), OUTBOUND, (family.remote_ip, 80))


# As the kubelet runs the injected init containers: their commands, in their order, with the
# ruleset where their volume puts it.


def patched_pod(annotations: dict[str, str]) -> dict[str, Any]:
    pod = web_pod(annotations)
    outcome = Injector(InjectorConfig()).evaluate(pod, "default")
    assert outcome.decision == "injected", outcome
    return jsonpatch.apply_patch(pod, list(outcome.operations))


def run_init_containers(netns: Netns, patched: dict[str, Any], rules_dir: Path) -> list[str]:
    """Runs the injected init containers' commands in netns, the ruleset from the Pod's
    annotation in rules_dir standing for their Downward API volume; their names, in order."""
    annotation = patched["metadata"]["annotations"]["injector.dev/iptables-rules"]
    (rules_dir / "rules").write_text(annotation)
    ran = []
    for container in patched["spec"]["initContainers"]:
        if container["name"] not in (INIT_CONTAINER, INIT_CONTAINER_IPV6):
            continue
        command = [arg.replace(IPTABLES_DIR, str(rules_dir)) for arg in container["command"]]
        if shutil.which(command[0]) is None:
            pytest.skip(f"{command[0]} is not installed")
        run(netns.command(command))
        ran.append(container["name"])
    return ran


def test_the_init_containers_capture_both_families(host_pod: Pod, tmp_path: Path) -> None:
    pod = host_pod
    patched = patched_pod({"injector.dev/exclude-outbound-cidrs": IPV6.other_cidr})

    assert run_init_containers(pod.netns, patched, tmp_path) == [
        INIT_CONTAINER,
        INIT_CONTAINER_IPV6,
    ]

    for family in FAMILIES:
        remote = family.remote_ip
        assert_redirected(pod.app_dials(remote, 80), OUTBOUND, (remote, 80))
        assert_redirected(pod.remote_dials_pod(family, 8080), INBOUND, (family.pod_ip, 8080))
    assert_reached(pod.app_dials(IPV6.remote_other_ip, 80), "remote", 80)
    other = pod.app_dials(IPV4.remote_other_ip, 80)
    assert_redirected(other, OUTBOUND, (IPV4.remote_other_ip, 80))


def test_ipv6_left_uncaptured_by_annotation_reaches_its_destinations_directly(
    host_pod: Pod, tmp_path: Path
) -> None:
    pod = host_pod
    patched = patched_pod({"injector.dev/ip-families": "IPv4"})

    assert run_init_containers(pod.netns, patched, tmp_path) == [INIT_CONTAINER]

    assert_reached(pod.app_dials(IPV6.remote_ip, 80), "remote", 80)
    assert_reached(pod.remote_dials_pod(IPV6, 8080), "app", 8080)
    assert_redirected(pod.app_dials(IPV4.remote_ip, 80), OUTBOUND, (IPV4.remote_ip, 80))
    assert_redirected(pod.remote_dials_pod(IPV4, 8080), INBOUND, (IPV4.pod_ip, 8080))


def test_a_pod_namespace_without_ipv6_takes_both_rulesets_and_captures_ipv4(
    ipv4_only_pod: Pod,
) -> None:
    pod = ipv4_only_pod
    assert "inet6" not in pod.netns.run(["ip", "-6", "addr", "show"])  # not even loopback

    pod.apply(ruleset(replace(INTERCEPT_ALL, exclude_outbound_cidrs=(IPV6.other_cidr,))))

    assert f"-A MESH_OUTPUT -d {IPV6.other_cidr} -j RETURN" in pod.saved_nat("IPv6")
    assert_redirected(pod.app_dials(IPV4.remote_ip, 80), OUTBOUND, (IPV4.remote_ip, 80))
    assert_redirected(pod.remote_dials_pod(IPV4, 8080), INBOUND, (IPV4.pod_ip, 8080))
    assert_reached(pod.remote_dials_pod(IPV4, HEALTH), "proxy", HEALTH)
    with pytest.raises(ConnectionError):
        pod.app_dials(IPV6.remote_ip, 80)  # there is no IPv6 to capture


def test_the_init_containers_succeed_in_a_pod_namespace_without_ipv6(
    host_ipv4_only_pod: Pod, tmp_path: Path
) -> None:
    pod = host_ipv4_only_pod
    patched = patched_pod({})

    assert run_init_containers(pod.netns, patched, tmp_path) == [
        INIT_CONTAINER,
        INIT_CONTAINER_IPV6,
    ]

    assert_redirected(pod.app_dials(IPV4.remote_ip, 80), OUTBOUND, (IPV4.remote_ip, 80))
    assert_redirected(pod.remote_dials_pod(IPV4, 8080), INBOUND, (IPV4.pod_ip, 8080))
