"""`injector certs` as a user runs it again and again: the CA is kept (a caBundle already
applied keeps working), a CA that cannot be reused is refused without --force, and hosts must be
DNS names or IP addresses."""

import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from lines import lines
from server import REPO

FILES = ("ca.crt", "ca.key", "tls.crt", "tls.key")


def certs(out: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "injector", "certs", "--out-dir", str(out), *args]
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


def contents(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in FILES}


def assert_signed_by(out: Path, ca: Path) -> None:
    """tls.key is the key of tls.crt, which `ca` signed."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(out / "tls.crt", out / "tls.key")
    issued = x509.load_pem_x509_certificate((out / "tls.crt").read_bytes())
    issued.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.read_bytes()))


def test_a_second_run_reuses_the_ca_and_issues_a_new_serving_certificate(tmp_path: Path) -> None:
    first = certs(tmp_path, "--host", "localhost", "--host", "127.0.0.1")
    assert first.returncode == 0, first.stderr
    assert lines(first.stdout) == [str(tmp_path / name) for name in FILES]
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    ca_until = f"{ca.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    assert lines(first.stderr) == [
        f"created the CA {tmp_path / 'ca.crt'}, valid until {ca_until}",
        f"issued {tmp_path / 'tls.crt'} for localhost, 127.0.0.1, valid until {ca_until}",
    ]
    before = contents(tmp_path)

    second = certs(tmp_path, "--host", "webhook.example.com")
    assert second.returncode == 0, second.stderr
    reused, issued_line = lines(second.stderr)
    assert reused == f"reused the CA {tmp_path / 'ca.crt'}, valid until {ca_until}"
    assert issued_line.startswith(f"issued {tmp_path / 'tls.crt'} for webhook.example.com, ")
    after = contents(tmp_path)
    assert (after["ca.crt"], after["ca.key"]) == (before["ca.crt"], before["ca.key"])
    assert after["tls.crt"] != before["tls.crt"] and after["tls.key"] != before["tls.key"]
    assert_signed_by(tmp_path, tmp_path / "ca.crt")
    issued = x509.load_pem_x509_certificate(after["tls.crt"])
    names = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["webhook.example.com"]
    assert (tmp_path / "tls.key").stat().st_mode & 0o077 == 0


def test_force_creates_a_new_ca(tmp_path: Path) -> None:
    assert certs(tmp_path, "--host", "localhost").returncode == 0
    before = contents(tmp_path)
    forced = certs(tmp_path, "--host", "localhost", "--force")
    assert forced.returncode == 0, forced.stderr
    assert contents(tmp_path)["ca.crt"] != before["ca.crt"]
    assert_signed_by(tmp_path, tmp_path / "ca.crt")


def test_a_serving_certificate_does_not_outlive_its_ca(tmp_path: Path) -> None:
    assert certs(tmp_path, "--host", "localhost", "--days", "2").returncode == 0
    longer = certs(tmp_path, "--host", "localhost", "--days", "30")
    assert longer.returncode == 0, longer.stderr
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    issued = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    assert issued.not_valid_after_utc == ca.not_valid_after_utc
    assert lines(longer.stderr)[1] == (
        f"issued {tmp_path / 'tls.crt'} for localhost, valid until "
        f"{ca.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, when the CA expires "
        "(--force creates a new CA)"
    )


def other_ca_key(tmp_path: Path) -> bytes:
    other = tmp_path / "other"
    assert certs(other, "--host", "localhost").returncode == 0
    return (other / "ca.key").read_bytes()


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("remove ca.key", "has ca.crt but no ca.key"),
        ("remove ca.crt", "has ca.key but no ca.crt"),
        ("swap ca.key", "has a ca.key that is not the key of ca.crt"),
        ("garble ca.key", "has a ca.key that is not an unencrypted PEM private key"),
        ("serving cert as ca.crt", "has a CA that cannot sign: "),
    ],
)
def test_a_ca_that_cannot_be_reused_is_refused_without_force(
    tmp_path: Path, damage: str, problem: str
) -> None:
    out = tmp_path / "dev-certs"
    assert certs(out, "--host", "localhost").returncode == 0
    match damage:
        case "remove ca.key":
            (out / "ca.key").unlink()
        case "remove ca.crt":
            (out / "ca.crt").unlink()
        case "swap ca.key":
            (out / "ca.key").write_bytes(other_ca_key(tmp_path))
        case "garble ca.key":
            (out / "ca.key").write_text("not a key\n")
        case "serving cert as ca.crt":
            (out / "ca.crt").write_bytes((out / "tls.crt").read_bytes())
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    refused = certs(out, "--host", "localhost")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.startswith(f"error: {out} {problem}")
    assert refused.stderr.endswith(
        "; --force creates a new CA there (a caBundle made from the old one must then be "
        "applied again)\n"
    )
    assert refused.stderr.count("\n") == 1
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before

    forced = certs(out, "--host", "localhost", "--force")
    assert forced.returncode == 0, forced.stderr
    assert_signed_by(out, out / "ca.crt")


@pytest.mark.parametrize(
    "host",
    ["https://localhost", "localhost:8443", "[::1]", "two words", "-leading-dash", "a_b", ""],
)
def test_a_host_that_is_not_a_dns_name_or_ip_address_is_refused(tmp_path: Path, host: str) -> None:
    result = certs(tmp_path / "out", "--host", "localhost", f"--host={host}")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: --host {host!r} is not a DNS name such as localhost or webhook.example.com, "
        "or an IP address (127.0.0.1)\n"
    )
    assert not (tmp_path / "out").exists()


def test_dns_names_are_lowercased_and_ipv6_addresses_accepted(tmp_path: Path) -> None:
    result = certs(tmp_path, "--host", "Webhook.Example.COM", "--host", "::1")
    assert result.returncode == 0, result.stderr
    issued = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    names = issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["webhook.example.com"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["::1"]


def test_days_below_one_are_refused(tmp_path: Path) -> None:
    result = certs(tmp_path, "--host", "localhost", "--days", "0")
    assert (result.returncode, result.stderr) == (1, "error: --days must be at least 1, got 0\n")


def test_the_readme_example_includes_loopback() -> None:
    readme = (REPO / "README.md").read_text()
    [example] = [line for line in lines(readme) if "injector certs --out-dir dev-certs" in line]
    assert "--host 127.0.0.1" in example
