"""HTTPS through `python -m injector serve`, with a CA from `python -m injector certs`."""

import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from admission_data import captured
from cryptography import x509
from server import REPO, Server, run_server


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    command = [sys.executable, "-m", "injector", "certs", "--out-dir", str(out)]
    command += ["--host", "localhost", "--host", "127.0.0.1", "--days", "2"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.split() == [
        str(out / n) for n in ("ca.crt", "ca.key", "tls.crt", "tls.key")
    ]
    return out


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> Iterator[Server]:
    tls = (certs / "tls.crt", certs / "tls.key")
    with run_server(tmp_path_factory.mktemp("https"), tls=tls) as running:
        yield running


def test_keys_are_private_and_the_certificate_names_every_host(certs: Path) -> None:
    assert (certs / "ca.key").stat().st_mode & 0o077 == 0
    assert (certs / "tls.key").stat().st_mode & 0o077 == 0
    cert = x509.load_pem_x509_certificate((certs / "tls.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_review_over_https_verified_against_only_the_development_ca(
    https_server: Server, certs: Path
) -> None:
    response = requests.post(
        f"{https_server.url}/mutate?timeout=10s",
        data=captured("b-minimal-pod.json"),
        headers={"Content-Type": "application/json"},
        verify=str(certs / "ca.crt"),
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["response"]["patchType"] == "JSONPatch"


def test_tls_1_3_is_negotiated_with_a_client_trusting_only_that_ca(
    https_server: Server, certs: Path
) -> None:
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    port = int(https_server.url.rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.3"


def test_a_client_with_the_system_trust_store_rejects_the_server(https_server: Server) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{https_server.url}/healthz", timeout=10)


def test_plain_http_is_not_served_on_the_https_port(https_server: Server) -> None:
    plain = https_server.url.replace("https://", "http://")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{plain}/healthz", timeout=5)


def test_serve_without_tls_serves_plain_http(tmp_path: Path) -> None:
    with run_server(tmp_path, serve=True) as running:
        assert requests.get(f"{running.url}/healthz", timeout=10).status_code == 200
