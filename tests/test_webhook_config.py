"""`python -m injector webhook-config`: a MutatingWebhookConfiguration a cluster accepts."""

import base64
import datetime
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from kubernetes_schema import validate_object
from lines import lines
from ruamel.yaml import YAML
from server import REPO

from injector.cluster.webhook_config import build_webhook_configuration
from injector.core.config import InjectorConfig


def run(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "injector", "webhook-config", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A development CA and serving certificate, from `injector certs`."""
    out = tmp_path_factory.mktemp("certs")
    command = [sys.executable, "-m", "injector", "certs", "--out-dir", str(out)]
    subprocess.run([*command, "--host", "127.0.0.1"], cwd=REPO, check=True, capture_output=True)
    return out


def test_printed_configuration_is_valid_and_complete(certs: Path) -> None:
    ca = certs / "ca.crt"
    result = run(
        "--url",
        "https://10.0.0.5:8443/secret-path",
        "--ca-bundle",
        str(ca),
        "--exclude-namespace",
        "legacy",
        "--timeout",
        "5",
    )
    assert result.returncode == 0, result.stderr
    manifest = YAML(typ="safe", pure=True).load(result.stdout)
    validate_object(manifest)
    assert manifest["metadata"] == {"name": "mesh-injector"}
    by_name = {w["name"]: w for w in manifest["webhooks"]}
    assert set(by_name) == {"namespace.webhook.injector.dev", "object.webhook.injector.dev"}
    for webhook in by_name.values():
        assert webhook["clientConfig"] == {
            "url": "https://10.0.0.5:8443/secret-path",
            "caBundle": base64.b64encode(ca.read_bytes()).decode(),
        }
        assert webhook["rules"] == [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ]
        assert webhook["sideEffects"] == "None"
        assert webhook["admissionReviewVersions"] == ["v1", "v1beta1"]
        assert webhook["reinvocationPolicy"] == "IfNeeded"
        assert (webhook["failurePolicy"], webhook["timeoutSeconds"]) == ("Fail", 5)
        assert webhook["namespaceSelector"]["matchExpressions"][1] == {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["kube-system", "kube-public", "kube-node-lease", "legacy"],
        }
    namespace_hook = by_name["namespace.webhook.injector.dev"]
    assert namespace_hook["namespaceSelector"]["matchExpressions"][0] == {
        "key": "injector.dev/injection",
        "operator": "In",
        "values": ["enabled"],
    }
    assert namespace_hook["objectSelector"] == {
        "matchExpressions": [
            {"key": "injector.dev/inject", "operator": "NotIn", "values": ["false"]}
        ]
    }
    object_hook = by_name["object.webhook.injector.dev"]
    assert object_hook["namespaceSelector"]["matchExpressions"][0] == {
        "key": "injector.dev/injection",
        "operator": "DoesNotExist",
    }
    assert object_hook["objectSelector"] == {
        "matchExpressions": [{"key": "injector.dev/inject", "operator": "In", "values": ["true"]}]
    }


def test_selectors_follow_the_configured_prefix(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("annotationPrefix: mesh.example.com\nexcludedNamespaces: [ops]\n")
    result = run("--url", "https://injector.example.com/t", "--config", str(config))
    manifest = YAML(typ="safe", pure=True).load(result.stdout)
    hook = manifest["webhooks"][0]
    assert hook["name"] == "namespace.webhook.mesh.example.com"
    assert hook["namespaceSelector"]["matchExpressions"][0]["key"] == "mesh.example.com/injection"
    assert hook["namespaceSelector"]["matchExpressions"][1]["values"] == ["ops"]
    assert hook["objectSelector"]["matchExpressions"][0]["key"] == "mesh.example.com/inject"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "http://127.0.0.1:8080/"], "the webhook URL must be https://"),
        (["--url", "https://host/path?x=1"], "may not carry a query, a fragment or user info"),
        (["--url", "https://user@host/path"], "may not carry a query, a fragment or user info"),
        (["--url", "https://host/", "--timeout", "31"], "timeoutSeconds must be from 1 to 30"),
        (["--url", "https://host/", "--ca-bundle", "/nonexistent/ca.crt"], "No such file"),
        (["--url", "https://host/", "--config", "/nonexistent.yaml"], "No such file"),
    ],
)
def test_invalid_input_exits_1_with_a_message_and_no_traceback(args, message) -> None:
    result = run(*args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_url_is_a_usage_error() -> None:
    result = run()
    assert result.returncode == 2
    assert "--url" in result.stderr


def certificate(
    *, ca: bool = True, key_cert_sign: bool = True, days: tuple[int, int] = (-1, 30)
) -> bytes:
    """A self-signed certificate, with the basicConstraints, keyUsage and validity asked for."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test anchor")])
    now = datetime.datetime.now(datetime.UTC)
    usage = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement"), False
    )
    built = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days[0]))
        .not_valid_after(now + datetime.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=key_cert_sign,
                crl_sign=key_cert_sign,
                encipher_only=False,
                decipher_only=False,
                **usage,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return built.public_bytes(serialization.Encoding.PEM)


def ca_bundle_of(result: subprocess.CompletedProcess) -> bytes:
    assert result.returncode == 0, result.stderr
    manifest = YAML(typ="safe", pure=True).load(result.stdout)
    bundles = {w["clientConfig"]["caBundle"] for w in manifest["webhooks"]}
    assert len(bundles) == 1
    return base64.b64decode(bundles.pop())


def test_a_bundle_of_several_ca_certificates_is_kept_whole(tmp_path: Path, certs: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    other = certificate()
    bundle.write_bytes(b"# the cluster CA\n" + (certs / "ca.crt").read_bytes() + other)
    result = run("--url", "https://host/", "--ca-bundle", str(bundle))
    assert ca_bundle_of(result) == (certs / "ca.crt").read_bytes() + other  # certificates only


@pytest.mark.parametrize("name", ["ca.key", "tls.key", "ca-and-key.pem", "rsa.key"])
def test_a_private_key_is_refused_loudly_and_never_echoed(
    tmp_path: Path, certs: Path, name: str
) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (tmp_path / "ca-and-key.pem").write_bytes(
        (certs / "ca.crt").read_bytes() + (certs / "ca.key").read_bytes()
    )
    (tmp_path / "rsa.key").write_bytes(rsa_key)
    path = certs / name if (certs / name).exists() else tmp_path / name
    result = run("--url", "https://host/", "--ca-bundle", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: --ca-bundle {path} holds a PRIVATE KEY: refusing to put it in the webhook "
        "configuration, where anyone who can read the cluster's webhook configurations would "
        "see it; give the CA's certificate (ca.crt), not its key\n"
    )
    encoded = [line for line in lines(path.read_text()) if line and not line.startswith("-----")]
    assert encoded
    assert not [line for line in encoded if line in result.stderr]


def test_a_serving_certificate_is_not_a_trust_anchor(certs: Path) -> None:
    result = run("--url", "https://host/", "--ca-bundle", str(certs / "tls.crt"))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: --ca-bundle {certs / 'tls.crt'} certificate 1 (CN=127.0.0.1) is not a CA "
        "certificate (basicConstraints cA is false): give the CA's certificate\n"
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        (b"not a certificate\n", "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        (
            b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "holds a CERTIFICATE block that does not parse",
        ),
        (
            b"-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
            "holds a PUBLIC KEY block: a CA bundle holds only CERTIFICATE blocks",
        ),
        (
            certificate(ca=False),
            "certificate 1 (CN=test anchor) is not a CA certificate (basicConstraints cA is "
            "false): give the CA's certificate",
        ),
        (
            certificate(key_cert_sign=False),
            "certificate 1 (CN=test anchor) may not sign certificates (its keyUsage lacks "
            "keyCertSign)",
        ),
        (certificate(days=(-30, -1)), "certificate 1 (CN=test anchor) expired on "),
        (certificate(days=(2, 30)), "certificate 1 (CN=test anchor) is not valid before "),
    ],
)
def test_anything_but_usable_ca_certificates_is_refused_in_one_line(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "bundle.pem"
    path.write_bytes(content)
    result = run("--url", "https://host/", "--ca-bundle", str(path))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"error: --ca-bundle {path} {problem}")
    assert result.stderr.count("\n") == 1


def test_a_der_certificate_is_refused(tmp_path: Path, certs: Path) -> None:
    ca = x509.load_pem_x509_certificate((certs / "ca.crt").read_bytes())
    path = tmp_path / "ca.der"
    path.write_bytes(ca.public_bytes(serialization.Encoding.DER))
    result = run("--url", "https://host/", "--ca-bundle", str(path))
    assert result.returncode == 1
    assert result.stderr == f"error: --ca-bundle {path} holds no PEM certificate " + (
        "(-----BEGIN CERTIFICATE-----)\n"
    )


def test_the_printed_configuration_validates_offline_as_the_readme_shows(certs: Path) -> None:
    """The README's offline check: the Kubernetes schema, with kubernetes-validate."""
    printed = run("--url", "https://127.0.0.1:8443/", "--ca-bundle", str(certs / "ca.crt"))
    assert printed.returncode == 0, printed.stderr
    validate = [str(Path(sys.executable).parent / "kubernetes-validate"), "-k", "1.32.0"]
    checked = subprocess.run(
        [*validate, "--strict", "-"],
        input=printed.stdout,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "passed for resource mutatingwebhookconfiguration/mesh-injector" in checked.stdout
    broken = printed.stdout.replace("sideEffects: None", "sideEffects: 3")
    refused = subprocess.run(
        [*validate, "--strict", "-"],
        input=broken,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 1
    assert "webhooks.0.sideEffects: 3 is not of type 'string'" in refused.stdout


def test_webhook_names_are_qualified_for_a_single_label_prefix() -> None:
    config = InjectorConfig(annotation_prefix="mesh")
    manifest = build_webhook_configuration(config, "https://host/t")
    assert [w["name"] for w in manifest["webhooks"]] == [
        "namespace.webhook.mesh",
        "object.webhook.mesh",
    ]
