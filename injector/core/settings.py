"""A Pod's effective configuration: the configuration, overridden by annotations under the prefix.

Each override annotation sets one configuration field. Its text is only split into the field's
raw value here (a comma-separated list, true or false, `*`); the configuration model then
validates the result as it validates a configuration file, so every rule exists once. An
annotation that breaks a rule is an error naming the annotation, its value and the expected
form: a Pod never silently gets a half-understood configuration.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from injector.core.config import (
    CIDR_FORM,
    IMAGE_FORM,
    LOG_LEVELS,
    PORT_FORM,
    InjectorConfig,
    ProxyKind,
)
from injector.core.keys import INJECT, IPTABLES_RULES, STATUS
from injector.errors import InvalidAnnotation
from injector.kube.quantity import QUANTITY_FORM


def _text(text: str) -> str:
    return text


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _port(text: str) -> int:
    if not text.isdigit():
        raise ValueError
    return int(text)


def _ports(text: str) -> list[int]:
    return [_port(item) for item in _items(text)]


def _port_selection(text: str) -> str | list[int]:
    return "*" if text.strip() == "*" else _ports(text)


def _bool(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError
    return text == "true"


UNCHANGED = object()  # what a parse returns for "keep the configured value"


def _control_plane(text: str) -> object:
    """`false` opts the Pod out of the control plane; `true` keeps the configured one."""
    return UNCHANGED if _bool(text) else None


@dataclass(frozen=True)
class Override:
    """An annotation that sets one configuration field."""

    path: tuple[str, ...]  # the field, by its names in the configuration file
    # Annotation text to the field's raw value, or UNCHANGED; ValueError if not of the form.
    parse: Callable[[str], object]
    form: str  # the annotation's expected form, for messages
    adds_to_config: bool = False  # exclusions add to the configured ones, never replace them
    # The proxy kind whose settings it sets; with another kind it is ignored, with a warning.
    proxy_kind: ProxyKind | None = None


_PORT_LIST = f"a comma-separated list of ports, each {PORT_FORM}, such as 8080,9090"
OVERRIDES: dict[str, Override] = {
    "proxy-image": Override(("proxy", "image"), _text, IMAGE_FORM),
    "proxy-cpu-request": Override(("proxy", "resources", "requests", "cpu"), _text, QUANTITY_FORM),
    "proxy-cpu-limit": Override(("proxy", "resources", "limits", "cpu"), _text, QUANTITY_FORM),
    "proxy-memory-request": Override(
        ("proxy", "resources", "requests", "memory"), _text, QUANTITY_FORM
    ),
    "proxy-memory-limit": Override(
        ("proxy", "resources", "limits", "memory"), _text, QUANTITY_FORM
    ),
    "log-level": Override(("proxy", "logLevel"), _text, "one of " + ", ".join(LOG_LEVELS)),
    "include-inbound-ports": Override(
        ("interception", "includeInboundPorts"), _port_selection, f"* or {_PORT_LIST}"
    ),
    "exclude-inbound-ports": Override(
        ("interception", "excludeInboundPorts"), _ports, _PORT_LIST, adds_to_config=True
    ),
    "exclude-outbound-ports": Override(
        ("interception", "excludeOutboundPorts"), _ports, _PORT_LIST, adds_to_config=True
    ),
    "exclude-outbound-cidrs": Override(
        ("interception", "excludeOutboundCidrs"),
        _items,
        f"a comma-separated list, each {CIDR_FORM}",
        adds_to_config=True,
    ),
    "ip-families": Override(("interception", "ipFamilies"), _items, "IPv4, IPv6 or IPv4,IPv6"),
    "native-sidecar": Override(("nativeSidecar",), _bool, "true or false"),
    "hold-application-until-proxy-ready": Override(
        ("holdApplicationUntilProxyReady",), _bool, "true or false"
    ),
    "http-detection": Override(
        ("proxy", "envoy", "httpDetection"), _bool, "true or false", proxy_kind="envoy"
    ),
    "control-plane": Override(
        ("controlPlane",),
        _control_plane,
        "false (the proxy is a pass-through and talks to no control plane) or true",
    ),
}


def override_annotations(config: InjectorConfig, annotations: Mapping[str, str]) -> dict[str, str]:
    """The Pod's override annotations for the configured proxy kind, in the order of OVERRIDES."""
    prefix = config.annotation_prefix + "/"
    return {
        prefix + suffix: annotations[prefix + suffix]
        for suffix, override in OVERRIDES.items()
        if prefix + suffix in annotations and override.proxy_kind in (None, config.proxy.kind)
    }


def other_kind_annotations(
    config: InjectorConfig, annotations: Mapping[str, str]
) -> dict[str, ProxyKind]:
    """The Pod's override annotations for another proxy kind than the configured one, each with
    its kind: they are ignored (a custom proxy owns its configuration)."""
    prefix = config.annotation_prefix + "/"
    return {
        prefix + suffix: override.proxy_kind
        for suffix, override in OVERRIDES.items()
        if prefix + suffix in annotations
        and override.proxy_kind is not None
        and override.proxy_kind != config.proxy.kind
    }


def pod_config(config: InjectorConfig, overrides: Mapping[str, str]) -> InjectorConfig:
    """The configuration with the override annotations applied; the same object if none are.

    `overrides` are the Pod's override annotations (see `override_annotations`). Raises
    InvalidAnnotation naming the first annotation whose value breaks a rule of the model.
    """
    if not overrides:
        return config
    prefix = config.annotation_prefix + "/"
    data = config.model_dump(by_alias=True)
    for key, value in overrides.items():
        override = OVERRIDES[key.removeprefix(prefix)]
        try:
            parsed = override.parse(value)
        except ValueError:
            raise InvalidAnnotation(key, value, f"expected {override.form}") from None
        if parsed is UNCHANGED:
            continue
        *parents, name = override.path
        fields = data
        for parent in parents:
            fields = fields[parent]
        if override.adds_to_config:
            assert isinstance(parsed, list)
            parsed = [*fields[name], *parsed]
        fields[name] = parsed
    try:
        return InjectorConfig.model_validate(data)
    except ValidationError as error:
        raise _blame(error.errors(include_url=False)[0], overrides, prefix) from None


def _blame(problem: Any, overrides: Mapping[str, str], prefix: str) -> InvalidAnnotation:
    """The annotation behind a validation problem, with the problem in the annotation's words."""
    location = tuple(str(part) for part in problem["loc"])
    paths = {key: OVERRIDES[key.removeprefix(prefix)].path for key in overrides}
    for key, path in paths.items():
        if location[: len(path)] == path:  # the field itself, or an item of it
            form = OVERRIDES[key.removeprefix(prefix)].form
            return InvalidAnnotation(key, overrides[key], f"expected {form}")
    # A rule over several fields (a request above its limit): the first annotation among them.
    fields = problem.get("ctx", {}).get("fields", ())
    involved = {(*location, *field.split(".")) for field in fields}
    key = next((key for key, path in paths.items() if path in involved), next(iter(overrides)))
    return InvalidAnnotation(key, overrides[key], problem["msg"])


def unknown_annotations(config: InjectorConfig, annotations: Mapping[str, str]) -> list[str]:
    """Annotations under the prefix that the injector does not know (often a typo)."""
    prefix = config.annotation_prefix + "/"
    known = {*OVERRIDES, INJECT, STATUS, IPTABLES_RULES}
    return [
        key for key in annotations if key.startswith(prefix) and key[len(prefix) :] not in known
    ]
