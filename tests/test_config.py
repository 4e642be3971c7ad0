"""The configuration model: a working default, and errors that name the field and problem."""

from pathlib import Path

import pytest

from injector.core.config import InjectorConfig, parse_config
from injector.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "examples" / "config.yaml"


def test_documented_example_is_exactly_the_embedded_default() -> None:
    assert parse_config(EXAMPLE.read_text()) == InjectorConfig()


def test_json_and_yaml_give_the_same_configuration() -> None:
    yaml_text = "defaultPolicy: disabled\nproxy:\n  uid: 2000\n  gid: 2000\n"
    json_text = '{"defaultPolicy": "disabled", "proxy": {"uid": 2000, "gid": 2000}}'
    assert parse_config(yaml_text) == parse_config(json_text)
    assert parse_config(json_text).proxy.uid == 2000


def test_empty_object_means_every_default() -> None:
    assert parse_config("{}") == InjectorConfig()


def test_digest_names_the_content() -> None:
    assert InjectorConfig().digest() == parse_config("{}").digest()
    assert InjectorConfig().digest() != parse_config("proxy: {uid: 2000}").digest()


def test_numbers_are_read_as_quantities_like_kubernetes_does() -> None:
    config = parse_config("proxy: {resources: {requests: {cpu: 1}, limits: {cpu: 2.5}}}")
    assert config.proxy.resources.as_kubernetes() == {
        "requests": {"cpu": "1", "memory": "128Mi"},
        "limits": {"cpu": "2.5", "memory": "1Gi"},
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [", "not valid YAML or JSON: expected the node content"),
        ("[]", "must be a mapping of fields"),
        ("bogus: 1", "bogus: Extra inputs are not permitted"),
        ("proxy: {ports: {inbound: 99999}}", "proxy.ports.inbound: Input should be less than or"),
        ("proxy: {ports: {inbound: 15001}}", "proxy.ports: the proxy's ports must all differ"),
        ("proxy: {uid: 0}", "proxy.uid: Input should be greater than or equal to 1"),
        ("proxy: {image: 'Bad Image'}", "proxy.image: expected an image reference"),
        ("proxy: {logLevel: loud}", "proxy.logLevel: Input should be 'trace'"),
        ("proxy: {healthPath: ready}", "proxy.healthPath: String should match pattern"),
        ("proxy: {env: [{name: '1X', value: v}]}", "proxy.env.0.name: '1X' is not a valid"),
        (
            "proxy: {resources: {requests: {cpu: 3}, limits: {cpu: 2}}}",
            "proxy.resources: the cpu request 3 is above the cpu limit 2",
        ),
        (
            "init: {resources: {limits: {memory: lots}}}",
            "init.resources.limits.memory: expected a non-negative Kubernetes quantity",
        ),
        (
            "interception: {excludeOutboundCidrs: ['fd00::/129']}",
            "interception.excludeOutboundCidrs.0: expected an IPv4 or IPv6 CIDR",
        ),
        (
            "interception: {excludeOutboundCidrs: ['::ffff:10.0.0.0/104']}",
            "excludeOutboundCidrs.0: expected an IPv4 or IPv6 CIDR such as 10.0.0.0/8 or fd00::/8, "
            "not an IPv4-mapped IPv6 network",
        ),
        ("interception: {ipFamilies: []}", "interception.ipFamilies: expected at least one of"),
        ("interception: {ipFamilies: [ipv6]}", "interception.ipFamilies.0: Input should be 'IPv4'"),
        ("interception: {excludeInboundPorts: [0]}", "interception.excludeInboundPorts.0"),
        ("interception: {includeInboundPorts: all}", "interception.includeInboundPorts"),
        ("annotationPrefix: Not_A_Domain", "annotationPrefix: 'Not_A_Domain' is not a DNS-1123"),
        ("defaultPolicy: maybe", "defaultPolicy: Input should be 'enabled' or 'disabled'"),
        ("excludedNamespaces: [Kube_System]", "excludedNamespaces.0: 'Kube_System' is not a DNS"),
        (
            "neverInjectSelectors: [{matchExpressions: [{key: a, operator: In}]}]",
            "neverInjectSelectors.0.matchExpressions.0: operator In needs at least one value",
        ),
        (
            "alwaysInjectSelectors: [{matchLabels: {'bad key!': x}}]",
            "alwaysInjectSelectors.0.matchLabels.bad key!.[key]",
        ),
        ("proxy: {args: [--x]}", "proxy: args is only for kind custom"),
        ("proxy: {waitCommand: [wait]}", "proxy: waitCommand is only for kind custom"),
        ("proxy: {kind: custom, envoy: {concurrency: 4}}", "proxy: envoy is only for kind envoy"),
        ("proxy: {kind: sidecar}", "proxy.kind: Input should be 'envoy' or 'custom'"),
        ("proxy: {kind: custom}", "proxy: kind custom runs your proxy's image with its args"),
        ("proxy: {envoy: {idleTimeoutSeconds: -1}}", "proxy.envoy.idleTimeoutSeconds: Input"),
    ],
)
def test_invalid_configuration_names_the_field_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(text)
    assert message in str(error.value)


def test_cidrs_of_both_families_are_accepted_in_canonical_form() -> None:
    config = parse_config(
        "interception: {excludeOutboundCidrs: [10.1.2.3/8, 'FD00:0:0::1/8', '2001:db8::/32']}"
    )
    assert config.interception.exclude_outbound_cidrs == ("10.0.0.0/8", "fd00::/8", "2001:db8::/32")


def test_both_families_are_captured_unless_the_configuration_leaves_one_out() -> None:
    assert InjectorConfig().interception.ip_families == ("IPv4", "IPv6")
    assert parse_config("interception: {ipFamilies: [IPv4]}").interception.ip_families == ("IPv4",)
    # The order carries no meaning, so it does not change the configuration (or its digest).
    reordered = parse_config("interception: {ipFamilies: [IPv6, IPv4, IPv6]}")
    assert reordered == InjectorConfig()
    assert reordered.digest() == InjectorConfig().digest()


def test_a_custom_proxy_takes_args_and_a_wait_command() -> None:
    config = parse_config(
        "nativeSidecar: false\nproxy: {kind: custom, args: [run], waitCommand: [proxy, wait]}"
    )
    assert (config.proxy.args, config.proxy.wait_command) == (("run",), ("proxy", "wait"))


def test_classic_mode_alone_is_a_valid_configuration() -> None:
    config = parse_config("nativeSidecar: false")
    assert (config.native_sidecar, config.hold_application_until_proxy_ready) == (False, True)


def test_yaml_errors_do_not_quote_the_configuration_text() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config("proxy:\n  env: [{name: TOKEN, value: s3cr3t-value}\n  uid: [")
    assert "s3cr3t-value" not in str(error.value)


def test_a_repeated_key_is_named_by_position_without_its_values() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config("proxy:\n  image: example.com/a:1\n  image: example.com/hush:2\n")
    assert str(error.value) == "the configuration repeats a key at line 3, column 3"


def test_a_file_changes_only_the_fields_it_gives() -> None:
    config = parse_config("proxy: {resources: {limits: {memory: 2Gi}}}")
    assert config.proxy.resources.as_kubernetes() == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    assert config.model_dump(exclude={"proxy"}) == InjectorConfig().model_dump(exclude={"proxy"})
    assert config.proxy.model_dump(exclude={"resources"}) == (
        InjectorConfig().proxy.model_dump(exclude={"resources"})
    )


def test_mappings_merge_at_every_depth_and_lists_replace() -> None:
    config = parse_config(
        "excludedNamespaces: [legacy]\n"
        "proxy: {kind: custom, ports: {admin: 19000}, args: [--concurrency, '2']}\n"
        "interception: {includeInboundPorts: [8080]}\n"
    )
    assert config.excluded_namespaces == ("legacy",)  # not appended to the defaults
    assert config.proxy.ports.model_dump() == {
        **InjectorConfig().proxy.ports.model_dump(),
        "admin": 19000,
    }
    assert config.proxy.args == ("--concurrency", "2")
    assert config.interception.include_inbound_ports == (8080,)


def test_null_drops_an_optional_default() -> None:
    config = parse_config("proxy: {resources: {limits: {cpu: null}}}")
    assert config.proxy.resources.as_kubernetes()["limits"] == {"memory": "1Gi"}


def test_the_digest_names_the_merged_configuration() -> None:
    partial = parse_config("proxy: {resources: {limits: {memory: 2Gi}}}")
    full = parse_config(
        EXAMPLE.read_text().replace(
            'limits: {cpu: "2", memory: 1Gi}', 'limits: {cpu: "2", memory: 2Gi}'
        )
    )
    assert partial == full
    assert partial.digest() == full.digest() != InjectorConfig().digest()
    assert parse_config(EXAMPLE.read_text()).digest() == InjectorConfig().digest()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "proxy: {resources: {requests: {memory: 2Gi}}}",
            "proxy.resources: the memory request 2Gi is above the memory limit 1Gi",
        ),
        ("proxy: {resources: {limits: {memory: [2Gi]}}}", "proxy.resources.limits.memory: "),
        ("proxy: {ports: 15001}", "proxy.ports: Input should be a valid dictionary"),
        ("proxy: null", "proxy: Input should be a valid dictionary"),
        (
            "proxy: {log_level: debug, logLevel: info}",
            "proxy.log_level: Extra inputs are not permitted",
        ),
    ],
)
def test_merged_fields_are_still_named_in_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(text)
    assert message in str(error.value)


def test_python_field_names_merge_like_the_camel_case_ones() -> None:
    given = parse_config('{"proxy": {"log_level": "debug", "resources": {"limits": {"cpu": 1}}}}')
    assert given == parse_config("proxy: {logLevel: debug, resources: {limits: {cpu: 1}}}")
    assert given.proxy.resources.as_kubernetes()["limits"] == {"cpu": "1", "memory": "1Gi"}


@pytest.mark.parametrize("text", ["", "\n", "# nothing changed yet\n", "---\n"])
def test_a_configuration_without_a_document_is_the_embedded_default(text: str) -> None:
    assert parse_config(text) == InjectorConfig()
