"""Per-Pod overrides: parsed exactly, combined with the configuration, or denied clearly."""

import pytest

from injector.config import InjectorConfig, parse_config
from injector.overrides import InvalidAnnotation, apply_overrides, default_settings

CONFIG = parse_config(
    "interception: {excludeOutboundPorts: [25], excludeOutboundCidrs: [10.0.0.0/8]}"
)


def settings_for(annotations: dict[str, str], config: InjectorConfig = CONFIG):
    return apply_overrides(default_settings(config), config, annotations)


def test_no_override_gives_the_configured_settings_object_itself() -> None:
    base = default_settings(CONFIG)
    settings, applied = apply_overrides(base, CONFIG, {"other.io/x": "y"})
    assert settings is base
    assert applied == {}


def test_every_override_is_parsed() -> None:
    settings, applied = settings_for(
        {
            "injector.dev/proxy-image": "example.com/p:2",
            "injector.dev/proxy-cpu-request": "0.5",
            "injector.dev/proxy-cpu-limit": "1500m",
            "injector.dev/proxy-memory-request": "1e8",
            "injector.dev/proxy-memory-limit": "1Gi",
            "injector.dev/log-level": "trace",
            "injector.dev/include-inbound-ports": " 8080 , 9090 ",
            "injector.dev/exclude-inbound-ports": "22",
            "injector.dev/exclude-outbound-ports": "5432,25",
            "injector.dev/exclude-outbound-cidrs": "192.168.1.7/24",
            "injector.dev/native-sidecar": "true",
            "injector.dev/hold-application-until-proxy-ready": "false",
        }
    )
    assert len(applied) == 12
    assert settings.proxy_image == "example.com/p:2"
    assert (settings.cpu_request, settings.cpu_limit) == ("0.5", "1500m")
    assert (settings.memory_request, settings.memory_limit) == ("1e8", "1Gi")
    assert settings.log_level == "trace"
    assert settings.include_inbound_ports == (8080, 9090)
    assert settings.exclude_inbound_ports == (22,)
    # Exclusions add to the configured ones; they never remove them.
    assert settings.exclude_outbound_ports == (25, 5432)
    assert settings.exclude_outbound_cidrs == ("10.0.0.0/8", "192.168.1.0/24")
    assert (settings.native_sidecar, settings.hold_application) == (True, False)


def test_star_includes_every_inbound_port_and_empty_includes_none() -> None:
    assert (
        settings_for({"injector.dev/include-inbound-ports": "*"})[0].include_inbound_ports is None
    )
    assert settings_for({"injector.dev/include-inbound-ports": ""})[0].include_inbound_ports == ()


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("proxy-image", "not an image!", "expected an image reference"),
        ("proxy-cpu-request", "1 core", "expected a non-negative Kubernetes quantity"),
        ("proxy-memory-limit", "-1Gi", "expected a non-negative Kubernetes quantity"),
        ("log-level", "DEBUG", "expected one of trace, debug, info, warning, error, critical, off"),
        ("include-inbound-ports", "http", "expected * or a comma-separated list of ports"),
        ("exclude-inbound-ports", "70000", "each a port number from 1 to 65535"),
        ("exclude-outbound-ports", "0", "each a port number from 1 to 65535"),
        ("exclude-outbound-cidrs", "10.0.0.0/33", "each an IPv4 CIDR such as 10.0.0.0/8"),
        ("exclude-outbound-cidrs", "fd00::/8", "each an IPv4 CIDR such as 10.0.0.0/8"),
        ("native-sidecar", "yes", "expected true or false"),
        ("hold-application-until-proxy-ready", "True", "expected true or false"),
        ("proxy-cpu-request", "3", "the proxy's cpu request 3 would be above its limit 2"),
        ("proxy-memory-limit", "64Mi", "the proxy's memory request 128Mi would be above its limit"),
        ("native-sidecar", "false", "needs proxy.waitCommand in the injector configuration"),
    ],
)
def test_invalid_value_names_annotation_value_and_expected_form(key, value, expected) -> None:
    with pytest.raises(InvalidAnnotation) as error:
        settings_for({f"injector.dev/{key}": value})
    message = str(error.value)
    assert message.startswith(f"annotation injector.dev/{key}={value!r} is invalid: ")
    assert expected in message


def test_classic_mode_without_hold_needs_no_wait_command() -> None:
    settings, _ = settings_for(
        {
            "injector.dev/native-sidecar": "false",
            "injector.dev/hold-application-until-proxy-ready": "false",
        }
    )
    assert (settings.native_sidecar, settings.hold_application) == (False, False)
