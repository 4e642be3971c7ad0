"""The ruleset applied with real iptables in real network namespaces, checked with real traffic.

A Pod namespace is joined to a remote namespace by a veth pair. In the Pod, a proxy (the
proxy's uid) listens on its outbound, inbound and health ports and an application listens on
its own ports; the remote namespace has a listener of its own. Each connection is answered by
whoever accepted it, so each test sees exactly where the rules sent it.
"""

import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from lines import lines
from netns import (
    Netns,
    Reply,
    connect,
    create_netns,
    delete_netns,
    dial,
    start_listener,
    unavailable_reason,
)

from injector.core.config import InjectorConfig
from injector.core.engine import Injector
from injector.core.iptables import Interception, ruleset
from injector.kube.patch import Operation, escape

pytestmark = pytest.mark.root

PROXY = InjectorConfig().proxy
PROXY_UID, PROXY_GID = PROXY.uid, PROXY.gid
OUTBOUND, INBOUND, HEALTH = PROXY.ports.outbound, PROXY.ports.inbound, PROXY.ports.health
APP_UID = APP_GID = 1000

POD_IP = "10.200.0.2"
REMOTE_IP = "10.200.0.1"
REMOTE_OTHER_IP = "10.99.0.1"  # on the remote too, but in a CIDR that can be excluded
APP_PORTS = (8080, 8081, 9090, 7070)
REMOTE_PORTS = (80, 5432)

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
)


@dataclass(frozen=True)
class Backend:
    name: str
    restore: str
    save: str


BACKENDS = [
    Backend("nft", "iptables-nft-restore", "iptables-nft-save"),
    Backend("legacy", "iptables-legacy-restore", "iptables-legacy-save"),
]


@pytest.fixture(scope="session")
def namespaces_usable() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(params=BACKENDS, ids=lambda backend: backend.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    backend: Backend = request.param
    for command in (backend.restore, backend.save):
        if shutil.which(command) is None:
            pytest.skip(f"{command} is not installed")
    return backend


@dataclass(frozen=True)
class Pod:
    netns: Netns
    remote: Netns
    backend: Backend

    def apply(self, rules: str) -> None:
        self.netns.run([self.backend.restore], stdin=rules)

    def saved_nat(self) -> str:
        return self.netns.run([self.backend.save, "-t", "nat"])

    def app_dials(self, host: str, port: int) -> Reply:
        return dial(self.netns, host, port, APP_UID, APP_GID)

    def remote_dials_pod(self, port: int) -> Reply:
        return dial(self.remote, POD_IP, port)


@pytest.fixture
def pod(namespaces_usable: None, backend: Backend) -> Iterator[Pod]:
    with ExitStack() as cleanup:
        pod_netns = create_netns("pod")
        cleanup.callback(delete_netns, pod_netns)
        remote = create_netns("remote")
        cleanup.callback(delete_netns, remote)
        connect(pod_netns, f"{POD_IP}/24", remote, f"{REMOTE_IP}/24")
        remote.ip("addr", "add", f"{REMOTE_OTHER_IP}/32", "dev", "eth0")
        pod_netns.ip("route", "add", "default", "via", REMOTE_IP)
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


def assert_reached(reply: Reply, listener: str, port: int) -> None:
    assert (reply.listener, reply.local[1]) == (listener, port), reply


def assert_redirected(reply: Reply, port: int, original_dst: tuple[str, int]) -> None:
    assert_reached(reply, "proxy", port)
    assert reply.original_dst == original_dst, reply


def test_application_outbound_goes_to_the_outbound_port(pod: Pod) -> None:
    assert_reached(pod.app_dials(REMOTE_IP, 80), "remote", 80)  # without the rules

    pod.apply(ruleset(INTERCEPT_ALL))

    assert_redirected(pod.app_dials(REMOTE_IP, 80), OUTBOUND, (REMOTE_IP, 80))
    assert_redirected(pod.app_dials(REMOTE_OTHER_IP, 5432), OUTBOUND, (REMOTE_OTHER_IP, 5432))


def test_proxy_outbound_leaves_directly(pod: Pod) -> None:
    pod.apply(ruleset(INTERCEPT_ALL))

    assert_reached(dial(pod.netns, REMOTE_IP, 80, PROXY_UID, PROXY_GID), "remote", 80)
    assert_reached(dial(pod.netns, REMOTE_IP, 80, PROXY_UID, APP_GID), "remote", 80)
    assert_reached(dial(pod.netns, REMOTE_IP, 80, APP_UID, PROXY_GID), "remote", 80)
    assert_redirected(pod.app_dials(REMOTE_IP, 80), OUTBOUND, (REMOTE_IP, 80))


def test_the_proxy_group_as_a_supplementary_group_does_not_bypass(pod: Pod) -> None:
    # What a Pod's fsGroup or supplementalGroups give every container.
    pod.apply(ruleset(INTERCEPT_ALL))

    reply = dial(pod.netns, REMOTE_IP, 80, APP_UID, APP_GID, groups=(PROXY_GID,))

    assert_redirected(reply, OUTBOUND, (REMOTE_IP, 80))


def test_excluded_outbound_port_and_cidr_leave_directly(pod: Pod) -> None:
    pod.apply(
        ruleset(
            replace(
                INTERCEPT_ALL,
                exclude_outbound_ports=(5432,),
                exclude_outbound_cidrs=("10.99.0.0/16",),
            )
        )
    )

    assert_reached(pod.app_dials(REMOTE_IP, 5432), "remote", 5432)
    assert_reached(pod.app_dials(REMOTE_OTHER_IP, 80), "remote", 80)
    assert_redirected(pod.app_dials(REMOTE_IP, 80), OUTBOUND, (REMOTE_IP, 80))


def test_inbound_goes_to_the_inbound_port_but_health_checks_do_not(pod: Pod) -> None:
    assert_reached(pod.remote_dials_pod(8080), "app", 8080)  # without the rules

    pod.apply(ruleset(INTERCEPT_ALL))

    reply = pod.remote_dials_pod(8080)
    assert_redirected(reply, INBOUND, (POD_IP, 8080))
    assert reply.peer[0] == REMOTE_IP
    assert_redirected(pod.remote_dials_pod(7070), INBOUND, (POD_IP, 7070))
    assert_reached(pod.remote_dials_pod(HEALTH), "proxy", HEALTH)
    # The outbound capture port is not open to others: a direct connection is captured too.
    assert_redirected(pod.remote_dials_pod(OUTBOUND), INBOUND, (POD_IP, OUTBOUND))


def test_excluded_inbound_port_reaches_the_application(pod: Pod) -> None:
    pod.apply(ruleset(replace(INTERCEPT_ALL, exclude_inbound_ports=(8081,))))

    assert_reached(pod.remote_dials_pod(8081), "app", 8081)
    assert_redirected(pod.remote_dials_pod(8080), INBOUND, (POD_IP, 8080))


def test_include_list_redirects_only_the_listed_inbound_ports(pod: Pod) -> None:
    pod.apply(ruleset(replace(INTERCEPT_ALL, include_inbound_ports=(8080, 9090))))

    assert_redirected(pod.remote_dials_pod(8080), INBOUND, (POD_IP, 8080))
    assert_redirected(pod.remote_dials_pod(9090), INBOUND, (POD_IP, 9090))
    assert_reached(pod.remote_dials_pod(7070), "app", 7070)
    assert_reached(pod.remote_dials_pod(HEALTH), "proxy", HEALTH)


def test_traffic_inside_the_pod_stays_inside(pod: Pod) -> None:
    pod.apply(ruleset(INTERCEPT_ALL))

    assert_reached(pod.app_dials("127.0.0.1", 8080), "app", 8080)
    assert_reached(pod.app_dials(POD_IP, 8080), "app", 8080)  # routed over lo as well
    # The proxy hands inbound connections on to the application.
    assert_reached(dial(pod.netns, POD_IP, 8080, PROXY_UID, PROXY_GID), "app", 8080)
    assert_redirected(pod.app_dials(REMOTE_IP, 8080), OUTBOUND, (REMOTE_IP, 8080))


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


def test_ruleset_from_the_engine_follows_the_pod_annotations(pod: Pod, tmp_path: Path) -> None:
    web = {
        "metadata": {
            "name": "web",
            "annotations": {
                "injector.dev/exclude-outbound-ports": "5432",
                "injector.dev/exclude-outbound-cidrs": "10.99.0.0/16",
                "injector.dev/exclude-inbound-ports": "8081",
                # An excluded port stays excluded even when it is also included.
                "injector.dev/include-inbound-ports": "8080,8081,9090",
            },
        },
        "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]},
    }
    outcome = Injector(InjectorConfig()).evaluate(web, "default")
    assert outcome.decision == "injected", outcome
    rules = tmp_path / "rules"
    rules.write_text(annotation_from_patch(outcome.operations, "injector.dev/iptables-rules"))

    pod.netns.run([pod.backend.restore, str(rules)])  # as the init container does

    assert_redirected(pod.app_dials(REMOTE_IP, 80), OUTBOUND, (REMOTE_IP, 80))
    assert_reached(pod.app_dials(REMOTE_IP, 5432), "remote", 5432)
    assert_reached(pod.app_dials(REMOTE_OTHER_IP, 80), "remote", 80)
    assert_reached(dial(pod.netns, REMOTE_IP, 80, PROXY_UID, PROXY_GID), "remote", 80)
    assert_redirected(pod.remote_dials_pod(8080), INBOUND, (POD_IP, 8080))
    assert_redirected(pod.remote_dials_pod(9090), INBOUND, (POD_IP, 9090))
    assert_reached(pod.remote_dials_pod(8081), "app", 8081)
    assert_reached(pod.remote_dials_pod(7070), "app", 7070)
    assert_reached(pod.remote_dials_pod(HEALTH), "proxy", HEALTH)


def normalized(saved: str) -> list[str]:
    """iptables-save output without its timestamped comments and packet counters."""
    return [
        re.sub(r"\[\d+:\d+\]", "[0:0]", line) for line in lines(saved) if not line.startswith("#")
    ]


def test_applying_the_ruleset_again_changes_nothing(pod: Pod) -> None:
    rules = ruleset(
        replace(
            INTERCEPT_ALL,
            exclude_inbound_ports=(8081,),
            exclude_outbound_ports=(5432,),
            exclude_outbound_cidrs=("10.99.0.0/16",),
        )
    )
    pod.apply(rules)
    first = normalized(pod.saved_nat())

    pod.apply(rules)  # the init container restarted

    assert normalized(pod.saved_nat()) == first
    appended = [line for line in first if line.startswith("-A ")]
    assert len(appended) == rules.count("\n-A "), first
    assert_redirected(pod.app_dials(REMOTE_IP, 80), OUTBOUND, (REMOTE_IP, 80))
