"""A Pod's effective configuration: overrides parsed exactly, validated by the model, or denied."""

import pytest

from injector.core.config import InjectorConfig, parse_config
from injector.core.settings import other_kind_annotations, override_annotations, pod_config
from injector.errors import InvalidAnnotation

CONFIG = parse_config(
    "interception: {excludeOutboundPorts: [25], excludeOutboundCidrs: [10.0.0.0/8]}"
)


def settings_for(annotations: dict[str, str], config: InjectorConfig = CONFIG):
    overrides = override_annotations(config, annotations)
    return pod_config(config, overrides), overrides


def test_no_override_gives_the_configuration_object_itself() -> None:
    config, applied = settings_for({"other.io/x": "y", "injector.dev/inject": "true"})
    assert config is CONFIG
    assert applied == {}


def test_every_override_is_parsed() -> None:
    config, applied = settings_for(
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
            "injector.dev/exclude-outbound-cidrs": "192.168.1.7/24, FD00::7/64",
            "injector.dev/ip-families": "IPv4",
            "injector.dev/native-sidecar": "true",
            "injector.dev/hold-application-until-proxy-ready": "false",
            "injector.dev/http-detection": "true",
        }
    )
    assert len(applied) == 14
    proxy, interception = config.proxy, config.interception
    assert proxy.image == "example.com/p:2"
    assert (proxy.resources.requests.cpu, proxy.resources.limits.cpu) == ("0.5", "1500m")
    assert (proxy.resources.requests.memory, proxy.resources.limits.memory) == ("1e8", "1Gi")
    assert proxy.log_level == "trace"
    assert proxy.envoy.http_detection is True
    assert interception.include_inbound_ports == (8080, 9090)
    assert interception.exclude_inbound_ports == (22,)
    # Exclusions add to the configured ones; they never remove them.
    assert interception.exclude_outbound_ports == (25, 5432, 25)
    assert interception.exclude_outbound_cidrs == ("10.0.0.0/8", "192.168.1.0/24", "fd00::/64")
    assert interception.ip_families == ("IPv4",)
    assert (config.native_sidecar, config.hold_application_until_proxy_ready) == (True, False)
    # Everything else is the configuration's.
    assert config.model_dump(
        exclude={"proxy", "interception", "hold_application_until_proxy_ready"}
    ) == CONFIG.model_dump(exclude={"proxy", "interception", "hold_application_until_proxy_ready"})


def test_ip_families_replace_the_configured_ones() -> None:
    ipv6_only = settings_for({"injector.dev/ip-families": "IPv6"})[0]
    assert ipv6_only.interception.ip_families == ("IPv6",)
    both = settings_for(
        {"injector.dev/ip-families": " IPv6 , IPv4 "},
        parse_config("interception: {ipFamilies: [IPv4]}"),
    )[0]
    assert both.interception.ip_families == ("IPv4", "IPv6")


def test_star_includes_every_inbound_port_and_empty_includes_none() -> None:
    star = settings_for({"injector.dev/include-inbound-ports": "*"})[0]
    assert star.interception.include_inbound_ports == "*"
    empty = settings_for({"injector.dev/include-inbound-ports": ""})[0]
    assert empty.interception.include_inbound_ports == ()


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
        ("exclude-outbound-cidrs", "10.0.0.0/33", "each an IPv4 or IPv6 CIDR such as 10.0.0.0/8"),
        ("exclude-outbound-cidrs", "fd00::/8,fd00::/129", "each an IPv4 or IPv6 CIDR such as"),
        ("exclude-outbound-cidrs", "::ffff:10.1.0.0/112", "each an IPv4 or IPv6 CIDR such as"),
        ("ip-families", "", "expected IPv4, IPv6 or IPv4,IPv6"),
        ("ip-families", "IPv4;IPv6", "expected IPv4, IPv6 or IPv4,IPv6"),
        ("ip-families", "ipv6", "expected IPv4, IPv6 or IPv4,IPv6"),
        ("native-sidecar", "yes", "expected true or false"),
        ("hold-application-until-proxy-ready", "True", "expected true or false"),
        ("http-detection", "on", "expected true or false"),
        ("proxy-cpu-request", "3", "the cpu request 3 is above the cpu limit 2"),
        ("proxy-memory-limit", "64Mi", "the memory request 128Mi is above the memory limit 64Mi"),
    ],
)
def test_invalid_value_names_annotation_value_and_expected_form(key, value, expected) -> None:
    with pytest.raises(InvalidAnnotation) as error:
        settings_for({f"injector.dev/{key}": value})
    message = str(error.value)
    assert message.startswith(f"annotation injector.dev/{key}={value!r} is invalid: ")
    assert expected in message


def test_a_rule_over_several_fields_blames_the_annotation_that_broke_it() -> None:
    # The image is valid; the memory limit is what puts the request above the limit.
    with pytest.raises(InvalidAnnotation) as error:
        settings_for(
            {
                "injector.dev/proxy-image": "example.com/p:2",
                "injector.dev/proxy-memory-limit": "1Mi",
            }
        )
    assert str(error.value).startswith("annotation injector.dev/proxy-memory-limit='1Mi'")


def test_classic_mode_alone_is_accepted() -> None:
    config, _ = settings_for({"injector.dev/native-sidecar": "false"})
    assert (config.native_sidecar, config.hold_application_until_proxy_ready) == (False, True)


def test_classic_mode_without_hold_needs_no_wait_command() -> None:
    config, _ = settings_for(
        {
            "injector.dev/native-sidecar": "false",
            "injector.dev/hold-application-until-proxy-ready": "false",
        }
    )
    assert (config.native_sidecar, config.hold_application_until_proxy_ready) == (False, False)


def test_an_annotation_for_another_proxy_kind_is_not_an_override() -> None:
    custom = parse_config("proxy: {kind: custom, image: example.com/proxy:1}")
    annotations = {"injector.dev/http-detection": "true", "injector.dev/log-level": "debug"}
    assert override_annotations(custom, annotations) == {"injector.dev/log-level": "debug"}
    assert other_kind_annotations(custom, annotations) == {"injector.dev/http-detection": "envoy"}
    assert other_kind_annotations(CONFIG, annotations) == {}
