"""The control plane in the configuration, the per-Pod opt-out, and the proxy's token volume."""

import json
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from injection_checks import assert_valid_and_user_objects_intact

from injector.cluster.dev_certs import create_dev_certificates
from injector.core.config import InjectorConfig, parse_config
from injector.core.engine import Injector
from injector.core.keys import PROXY_CONTAINER, PROXY_TOKEN_DIR, PROXY_TOKEN_VOLUME
from injector.core.settings import override_annotations, pod_config
from injector.core.status import InjectionStatus
from injector.errors import ConfigError, InvalidAnnotation


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("ca")
    create_dev_certificates(out, ["control-plane.mesh-system.svc"])
    return (out / "ca.crt").read_text()


BROKEN_CERTIFICATE = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"


def control_plane(ca_pem: str, **fields: Any) -> str:
    """A configuration with a control plane; `fields` replace parts of its section."""
    section: dict[str, Any] = {
        "address": {"host": "control-plane.mesh-system.svc", "port": 15012},
        "tls": {"mode": "verify", "caCertificate": ca_pem},
        "token": {"audience": "mesh", "expirationSeconds": 3600},
        **fields,
    }
    return json.dumps({"controlPlane": section})


def pod(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
    }


def test_no_control_plane_by_default() -> None:
    assert InjectorConfig().control_plane is None


def test_a_complete_control_plane_section_is_read(ca_pem: str) -> None:
    config = parse_config(
        control_plane(
            ca_pem,
            tls={"mode": "verify", "caCertificate": ca_pem, "serverName": "cp.example"},
            podLabels=["app", "tier"],
        )
    )
    section = config.control_plane
    assert section is not None
    assert (section.address.host, section.address.port) == ("control-plane.mesh-system.svc", 15012)
    assert (section.tls.mode, section.tls.server_name) == ("verify", "cp.example")
    assert section.tls.ca_certificate == ca_pem
    assert section.token is not None
    assert (section.token.audience, section.token.expiration_seconds) == ("mesh", 3600)
    assert section.pod_labels == ("app", "tier")


def test_plain_text_without_a_token_and_an_ip_address_are_accepted() -> None:
    config = parse_config(
        '{"controlPlane": {"address": {"host": "fd00::10", "port": 18000}, "tls": {"mode": "off"}}}'
    )
    assert config.control_plane is not None
    assert config.control_plane.address.host == "fd00::10"
    assert config.control_plane.token is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"address": {"host": "Control_Plane", "port": 1}}, "controlPlane.address.host: expected"),
        ({"address": {"host": "cp", "port": 0}}, "controlPlane.address.port: Input should be"),
        ({"address": {"host": "cp"}}, "controlPlane.address.port: Field required"),
        ({"tls": {"mode": "verify"}}, "controlPlane.tls: mode verify needs caCertificate"),
        ({"tls": {"mode": "strict"}}, "controlPlane.tls.mode: Input should be 'off' or 'verify'"),
        (
            {"tls": {"mode": "verify", "caCertificate": "not a certificate"}},
            "controlPlane.tls.caCertificate: expected PEM certificates",
        ),
        (
            {
                "tls": {
                    "mode": "verify",
                    "caCertificate": BROKEN_CERTIFICATE,
                }
            },
            "controlPlane.tls.caCertificate: expected PEM certificates, and they cannot be parsed",
        ),
        (
            {"tls": {"mode": "off", "serverName": "cp.example"}},
            "controlPlane.tls: caCertificate and serverName are only used with mode verify",
        ),
        ({"tls": {"mode": "off"}}, "controlPlane: a token is only presented over TLS"),
        ({"token": {"audience": ""}}, "controlPlane.token.audience: String should have at least"),
        ({"token": {"audience": "a b"}}, "controlPlane.token.audience: String should match"),
        (
            {"token": {"audience": "mesh", "expirationSeconds": 599}},
            "controlPlane.token.expirationSeconds: Input should be greater than or equal to 600",
        ),
        (
            {"token": {"audience": "mesh", "expirationSeconds": 2**32 + 1}},
            "controlPlane.token.expirationSeconds: Input should be less than or equal to",
        ),
        ({"podLabels": ["app", "app"]}, "controlPlane: podLabels lists a label twice"),
        ({"podLabels": ["bad key!"]}, "controlPlane.podLabels.0: 'bad key!' is not a valid label"),
        (
            {"podLabels": [f"l{i}" for i in range(33)]},
            "controlPlane.podLabels: Tuple should have at most 32",
        ),
        ({"retries": 3}, "controlPlane.retries: Extra inputs are not permitted"),
    ],
)
def test_an_invalid_control_plane_names_the_field_and_the_problem(
    ca_pem: str, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(control_plane(ca_pem, **fields))
    assert message in str(error.value)


def test_a_private_key_is_refused_and_never_quoted(tmp_path: Path, ca_pem: str) -> None:
    create_dev_certificates(tmp_path, ["localhost"])
    key = (tmp_path / "tls.key").read_text()
    with pytest.raises(ConfigError) as error:
        parse_config(control_plane(ca_pem, tls={"mode": "verify", "caCertificate": ca_pem + key}))
    assert "holds a private key" in str(error.value)
    assert key.split("\n")[1] not in str(error.value)


def test_the_opt_out_annotation_removes_the_control_plane_and_true_keeps_it(ca_pem: str) -> None:
    config = parse_config(control_plane(ca_pem))
    opted_out = pod_config(config, {"injector.dev/control-plane": "false"})
    assert opted_out.control_plane is None
    assert opted_out.proxy == config.proxy
    kept = pod_config(config, {"injector.dev/control-plane": "true"})
    assert kept.control_plane == config.control_plane
    # Without a control plane configured, true keeps that too.
    nothing_configured = pod_config(InjectorConfig(), {"injector.dev/control-plane": "true"})
    assert nothing_configured.control_plane is None


def test_the_opt_out_annotation_is_known_and_checked(ca_pem: str) -> None:
    config = parse_config(control_plane(ca_pem))
    annotations = {"injector.dev/control-plane": "no", "other.io/x": "y"}
    assert override_annotations(config, annotations) == {"injector.dev/control-plane": "no"}
    with pytest.raises(InvalidAnnotation) as error:
        pod_config(config, override_annotations(config, annotations))
    assert str(error.value).startswith("annotation injector.dev/control-plane='no' is invalid: ")
    assert "expected false (the proxy is a pass-through" in str(error.value)


def _injected(config: InjectorConfig, annotations: dict[str, str] | None = None):
    original = pod(annotations)
    outcome = Injector(config).evaluate(original, "shop")
    assert outcome.decision == "injected", outcome
    patched = jsonpatch.apply_patch(original, list(outcome.operations))
    assert_valid_and_user_objects_intact(original, patched)
    return patched


def _proxy(patched: dict[str, Any]) -> dict[str, Any]:
    spec = patched["spec"]
    containers = (*spec.get("initContainers", ()), *spec["containers"])
    return next(c for c in containers if c["name"] == PROXY_CONTAINER)


def test_the_proxy_gets_a_projected_token_read_only(ca_pem: str) -> None:
    config = parse_config(
        control_plane(ca_pem, token={"audience": "mesh-cp", "expirationSeconds": 7200})
    )
    patched = _injected(config)
    volume = next(v for v in patched["spec"]["volumes"] if v["name"] == PROXY_TOKEN_VOLUME)
    assert volume == {
        "name": PROXY_TOKEN_VOLUME,
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "audience": "mesh-cp",
                        "expirationSeconds": 7200,
                        "path": "token",
                    }
                }
            ]
        },
    }
    mounts = [m for m in _proxy(patched)["volumeMounts"] if m["name"] == PROXY_TOKEN_VOLUME]
    assert mounts == [{"name": PROXY_TOKEN_VOLUME, "mountPath": PROXY_TOKEN_DIR, "readOnly": True}]
    # Only the proxy mounts it; uninject removes it with the rest.
    others = [c for c in patched["spec"]["containers"] if c["name"] != PROXY_CONTAINER]
    assert all(PROXY_TOKEN_VOLUME not in json.dumps(c) for c in others)
    status_annotation = patched["metadata"]["annotations"]["injector.dev/status"]
    status = InjectionStatus.from_annotation(status_annotation)
    assert PROXY_TOKEN_VOLUME in status.volumes


def test_no_token_volume_without_a_token_or_with_the_opt_out(ca_pem: str) -> None:
    without_token = parse_config(
        '{"controlPlane": {"address": {"host": "cp", "port": 18000}, "tls": {"mode": "off"}}}'
    )
    for patched in (
        _injected(without_token),
        _injected(parse_config(control_plane(ca_pem)), {"injector.dev/control-plane": "false"}),
        _injected(InjectorConfig()),
    ):
        assert PROXY_TOKEN_VOLUME not in json.dumps(patched)


def test_a_pod_with_a_volume_of_the_token_s_name_is_not_injected(ca_pem: str) -> None:
    config = parse_config(control_plane(ca_pem))
    original = pod()
    original["spec"]["volumes"] = [{"name": PROXY_TOKEN_VOLUME, "emptyDir": {}}]
    outcome = Injector(config).evaluate(original, "shop")
    assert (outcome.decision, outcome.reason) == ("skipped", "name-conflict")


def test_no_token_is_ever_in_an_annotation_or_an_env_value(ca_pem: str) -> None:
    patched = _injected(parse_config(control_plane(ca_pem)))
    for container in (*patched["spec"].get("initContainers", ()), *patched["spec"]["containers"]):
        for var in container.get("env", ()):
            assert "token" not in var["name"].lower()
            assert "serviceAccountToken" not in json.dumps(var)
    assert "serviceAccountToken" not in json.dumps(patched["metadata"])


def test_http_detection_with_a_control_plane_is_a_warning_and_applies_with_the_opt_out(
    ca_pem: str,
) -> None:
    injector = Injector(parse_config(control_plane(ca_pem)))
    detecting = {"injector.dev/http-detection": "true"}
    outcome = injector.evaluate(pod(detecting), "shop")
    assert outcome.decision == "injected"
    assert outcome.warnings == (
        "HTTP detection has no effect with a control plane: the control plane sends the proxy's "
        'listeners (with the control-plane annotation "false", the pass-through detects HTTP)',
    )
    assert "http_inspector" not in json.dumps(outcome.operations)

    opted_out = injector.evaluate(pod({**detecting, "injector.dev/control-plane": "false"}), "shop")
    assert (opted_out.decision, opted_out.warnings) == ("injected", ())
    assert "http_inspector" in json.dumps(opted_out.operations)
