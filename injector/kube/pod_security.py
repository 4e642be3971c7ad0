"""What the Pod Security Standards allow (Kubernetes documentation "Pod Security Standards").

The levels are cumulative: `restricted` forbids everything `baseline` forbids, and more. A
namespace enforces a level with the label `pod-security.kubernetes.io/enforce`; the PodSecurity
admission controller then rejects a Pod that breaks it, after mutating webhooks have run.
"""

from collections.abc import Mapping
from typing import Any

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"

# Baseline, "Capabilities": adding any capability but these is forbidden.
BASELINE_ADDABLE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def capabilities_beyond_baseline(container: Mapping[str, Any]) -> tuple[str, ...]:
    """The capabilities a container adds (`securityContext.capabilities.add`) that the baseline
    level, and so also restricted, forbids."""
    capabilities = (container.get("securityContext") or {}).get("capabilities") or {}
    return tuple(
        name for name in capabilities.get("add") or () if name not in BASELINE_ADDABLE_CAPABILITIES
    )
