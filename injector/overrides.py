"""Per-Pod settings: the configuration, overridden by annotations under the prefix.

An annotation that cannot be understood is an error naming the annotation, its value and the
expected form: a Pod never silently gets a half-understood configuration.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from injector.config import (
    CIDR_FORM,
    IMAGE_FORM,
    LOG_LEVELS,
    PORT_FORM,
    InjectorConfig,
    check_image,
    check_quantity,
    normalize_cidr,
)
from injector.keys import INJECT, IPTABLES_RULES, STATUS
from injector.quantity import QUANTITY_FORM, parse_quantity


@dataclass(frozen=True)
class ProxySettings:
    """Everything about one injection that a Pod may override."""

    proxy_image: str
    log_level: str
    cpu_request: str | None
    cpu_limit: str | None
    memory_request: str | None
    memory_limit: str | None
    include_inbound_ports: tuple[int, ...] | None  # None: every port
    exclude_inbound_ports: tuple[int, ...]
    exclude_outbound_ports: tuple[int, ...]
    exclude_outbound_cidrs: tuple[str, ...]
    native_sidecar: bool
    hold_application: bool


class InvalidAnnotation(ValueError):
    """A value the Pod set under the prefix (an annotation, or the inject label) is invalid."""

    def __init__(self, key: str, value: str, problem: str, kind: str = "annotation"):
        super().__init__(f"{kind} {key}={value!r} is invalid: {problem}")


def default_settings(config: InjectorConfig) -> ProxySettings:
    proxy, interception = config.proxy, config.interception
    include = interception.include_inbound_ports
    return ProxySettings(
        proxy_image=proxy.image,
        log_level=proxy.log_level,
        cpu_request=proxy.resources.requests.cpu,
        cpu_limit=proxy.resources.limits.cpu,
        memory_request=proxy.resources.requests.memory,
        memory_limit=proxy.resources.limits.memory,
        include_inbound_ports=None if include == "*" else include,
        exclude_inbound_ports=interception.exclude_inbound_ports,
        exclude_outbound_ports=interception.exclude_outbound_ports,
        exclude_outbound_cidrs=interception.exclude_outbound_cidrs,
        native_sidecar=config.native_sidecar,
        hold_application=config.hold_application_until_proxy_ready,
    )


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError
    return int(text)


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _ports(text: str) -> tuple[int, ...]:
    return tuple(_port(item) for item in _items(text))


def _port_selection(text: str) -> tuple[int, ...] | None:
    return None if text.strip() == "*" else _ports(text)


def _cidrs(text: str) -> tuple[str, ...]:
    return tuple(normalize_cidr(item) for item in _items(text))


def _bool(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError
    return text == "true"


def _log_level(text: str) -> str:
    if text not in LOG_LEVELS:
        raise ValueError
    return text


@dataclass(frozen=True)
class Override:
    field: str
    parse: Callable[[str], object]
    form: str
    adds_to_config: bool = False  # exclusions add to the configured ones, never replace them


_PORT_LIST = f"a comma-separated list of ports, each {PORT_FORM}, such as 8080,9090"
OVERRIDES: dict[str, Override] = {
    "proxy-image": Override("proxy_image", check_image, IMAGE_FORM),
    "proxy-cpu-request": Override("cpu_request", check_quantity, QUANTITY_FORM),
    "proxy-cpu-limit": Override("cpu_limit", check_quantity, QUANTITY_FORM),
    "proxy-memory-request": Override("memory_request", check_quantity, QUANTITY_FORM),
    "proxy-memory-limit": Override("memory_limit", check_quantity, QUANTITY_FORM),
    "log-level": Override("log_level", _log_level, "one of " + ", ".join(LOG_LEVELS)),
    "include-inbound-ports": Override(
        "include_inbound_ports", _port_selection, f"* or {_PORT_LIST}"
    ),
    "exclude-inbound-ports": Override("exclude_inbound_ports", _ports, _PORT_LIST, True),
    "exclude-outbound-ports": Override("exclude_outbound_ports", _ports, _PORT_LIST, True),
    "exclude-outbound-cidrs": Override(
        "exclude_outbound_cidrs", _cidrs, f"a comma-separated list, each {CIDR_FORM}", True
    ),
    "native-sidecar": Override("native_sidecar", _bool, "true or false"),
    "hold-application-until-proxy-ready": Override("hold_application", _bool, "true or false"),
}


def apply_overrides(
    base: ProxySettings, config: InjectorConfig, annotations: dict[str, str]
) -> tuple[ProxySettings, dict[str, str]]:
    """The settings for a Pod, and the override annotations that were applied."""
    prefix = config.annotation_prefix + "/"
    changes: dict[str, object] = {}
    applied: dict[str, str] = {}
    for suffix, override in OVERRIDES.items():
        key = prefix + suffix
        value = annotations.get(key)
        if value is None:
            continue
        try:
            parsed = override.parse(value)
        except ValueError:
            raise InvalidAnnotation(key, value, f"expected {override.form}") from None
        if override.adds_to_config:
            parsed = tuple(dict.fromkeys((*getattr(base, override.field), *parsed)))
        changes[override.field] = parsed
        applied[key] = value
    if not changes:
        return base, applied
    settings = dataclasses.replace(base, **changes)
    _check_resources(settings, prefix, applied)
    _check_hold(settings, config, prefix, applied)
    return settings, applied


def _check_resources(settings: ProxySettings, prefix: str, applied: dict[str, str]) -> None:
    for name in ("cpu", "memory"):
        request = getattr(settings, f"{name}_request")
        limit = getattr(settings, f"{name}_limit")
        if request and limit and parse_quantity(request) > parse_quantity(limit):
            key = next(
                (
                    k
                    for k in (f"{prefix}proxy-{name}-request", f"{prefix}proxy-{name}-limit")
                    if k in applied
                ),
                f"{prefix}proxy-{name}-request",
            )
            raise InvalidAnnotation(
                key,
                applied.get(key, request),
                f"the proxy's {name} request {request} would be above its limit {limit}",
            )


def _check_hold(
    settings: ProxySettings, config: InjectorConfig, prefix: str, applied: dict[str, str]
) -> None:
    if settings.native_sidecar or not settings.hold_application or config.proxy.wait_command:
        return
    key = next(
        (
            k
            for k in (f"{prefix}native-sidecar", f"{prefix}hold-application-until-proxy-ready")
            if k in applied
        ),
    )
    raise InvalidAnnotation(
        key,
        applied[key],
        "holding the application until a classic (non-native) proxy is ready needs "
        "proxy.waitCommand in the injector configuration, which is not set",
    )


def unknown_annotations(config: InjectorConfig, annotations: dict[str, str]) -> list[str]:
    """Annotations under the prefix that the injector does not know (often a typo)."""
    prefix = config.annotation_prefix + "/"
    known = {*OVERRIDES, INJECT, STATUS, IPTABLES_RULES}
    return [
        key for key in annotations if key.startswith(prefix) and key[len(prefix) :] not in known
    ]
