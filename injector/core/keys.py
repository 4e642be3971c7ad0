"""The names the injector writes into a Pod, and the annotation and label keys it reads."""

from dataclasses import dataclass

INIT_CONTAINER = "mesh-init"  # applies the ruleset to IPv4
INIT_CONTAINER_IPV6 = "mesh-init-ipv6"  # and to IPv6
PROXY_CONTAINER = "mesh-proxy"
IPTABLES_VOLUME = "mesh-iptables"
XTABLES_LOCK_VOLUME = "mesh-xtables-lock"
PROXY_TMP_VOLUME = "mesh-proxy-tmp"
# The projected ServiceAccount token the proxy presents to its control plane.
PROXY_TOKEN_VOLUME = "mesh-proxy-token"
PROXY_TOKEN_DIR = "/var/run/secrets/mesh"
PROXY_TOKEN_FILE = "token"
INJECTED_CONTAINERS = frozenset({INIT_CONTAINER, INIT_CONTAINER_IPV6, PROXY_CONTAINER})
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"

# Names under the prefix that are not per-Pod overrides.
INJECT = "inject"
STATUS = "status"
IPTABLES_RULES = "iptables-rules"


@dataclass(frozen=True)
class Keys:
    """Annotation and label keys under the configured prefix."""

    prefix: str

    @property
    def inject(self) -> str:
        """Label or annotation with "true" or "false": the Pod's own choice."""
        return f"{self.prefix}/{INJECT}"

    @property
    def status(self) -> str:
        """Annotation recording exactly what was injected; its presence means injected."""
        return f"{self.prefix}/{STATUS}"

    @property
    def iptables_rules(self) -> str:
        """Annotation holding the ruleset, read by the init container via the Downward API."""
        return f"{self.prefix}/{IPTABLES_RULES}"

    @property
    def injected_label(self) -> str:
        """Label marking injected Pods, so they can be selected."""
        return f"{self.prefix}/injected"
