"""A development certificate authority and a serving certificate, for a local cluster to trust.

The CA in the output directory is reused when it is there: a webhook configuration already
applied with its certificate as `caBundle` keeps working with every new serving certificate.
A CA that is there but cannot be reused (half of it, a key that does not match, expired) is
refused unless `force` asks for a new one.
"""

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from injector.cluster.trust_anchors import check_trust_anchors
from injector.errors import CertificateAuthorityError, InvalidArgument, InvalidCaBundle
from injector.kube.names import check_dns_subdomain

CA_CERT, CA_KEY, TLS_CERT, TLS_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "injector development CA")])
HOST_FORM = "a DNS name such as localhost or webhook.example.com, or an IP address (127.0.0.1)"


@dataclass(frozen=True)
class DevCertificates:
    paths: list[Path]  # ca.crt, ca.key, tls.crt, tls.key
    reused_ca: bool
    ca_valid_until: datetime.datetime  # the CA's notAfter (UTC)
    valid_until: datetime.datetime  # the serving certificate's notAfter (UTC)
    capped_by_ca: bool  # valid_until is the CA's own end, before the days asked for


def subject_alternative_name(host: str) -> x509.GeneralName:
    """The SAN entry for `host`: an IP address, or a DNS name (RFC 1123, lowercase; RFC 5280
    4.2.1.6). InvalidArgument for anything else: a URL, a host with a port, a space…"""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return x509.DNSName(check_dns_subdomain(host.lower()))
    except ValueError:
        raise InvalidArgument(f"--host {host!r} is not {HOST_FORM}") from None


def create_dev_certificates(
    out_dir: Path, hosts: list[str], days: int = 365, force: bool = False
) -> DevCertificates:
    """Writes tls.crt and tls.key for `hosts`, signed by the CA in ca.crt and ca.key, which is
    created first when absent (or when `force`). Keys are written readable by the owner only.

    Raises InvalidArgument for a host that is not a DNS name or IP address or for days < 1,
    and CertificateAuthorityError for a CA that is there but cannot be reused."""
    names = [subject_alternative_name(host) for host in hosts]
    if days < 1:
        raise InvalidArgument(f"--days must be at least 1, got {days}")
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)  # X.509 times: seconds
    requested = now + datetime.timedelta(days=days)
    existing = None if force else _existing_ca(out_dir, now)
    ca_cert, ca_key = existing or _new_ca(now, requested)
    valid_until = min(requested, ca_cert.not_valid_after_utc)

    server_key = ec.generate_private_key(ec.SECP256R1())
    first = names[0].value
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(first))]))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(valid_until)
        .add_extension(x509.SubjectAlternativeName(names), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    if existing is None:
        _write(out_dir / CA_CERT, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        _write(out_dir / CA_KEY, _key_pem(ca_key), 0o600)
    _write(out_dir / TLS_CERT, server_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(out_dir / TLS_KEY, _key_pem(server_key), 0o600)
    return DevCertificates(
        [out_dir / name for name in (CA_CERT, CA_KEY, TLS_CERT, TLS_KEY)],
        reused_ca=existing is not None,
        ca_valid_until=ca_cert.not_valid_after_utc,
        valid_until=valid_until,
        capped_by_ca=valid_until < requested,
    )


def _existing_ca(
    out_dir: Path, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    cert_path, key_path = out_dir / CA_CERT, out_dir / CA_KEY
    present = [path.name for path in (cert_path, key_path) if path.exists()]
    if not present:
        return None
    if len(present) == 1:
        missing = CA_KEY if present == [CA_CERT] else CA_CERT
        _refuse(out_dir, f"has {present[0]} but no {missing}")
    try:
        cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
    except OSError as error:
        _refuse(out_dir, f"has a CA that cannot be read ({error.strerror})")
    try:
        certificates = check_trust_anchors(cert_pem, str(cert_path))
    except InvalidCaBundle as error:
        _refuse(out_dir, f"has a CA that cannot sign: {error}")
    if len(certificates) != 1:
        _refuse(out_dir, f"has {len(certificates)} certificates in {CA_CERT}, not one CA")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (TypeError, ValueError):
        _refuse(out_dir, f"has a {CA_KEY} that is not an unencrypted PEM private key")
    cert = certificates[0]
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        _refuse(out_dir, f"has a {CA_KEY} that is not the key of {CA_CERT}")
    return cert, key


def _refuse(out_dir: Path, problem: str) -> NoReturn:
    raise CertificateAuthorityError(
        f"{out_dir} {problem}; --force creates a new CA there (a caBundle made from the old "
        "one must then be applied again)"
    )


def _new_ca(
    now: datetime.datetime, valid_until: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(CA_NAME)
        .issuer_name(CA_NAME)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(valid_until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, content: bytes, mode: int) -> None:
    """Writes `content` to a file that has `mode` before any byte is written."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as file:
        os.fchmod(file.fileno(), mode)
        file.write(content)
