"""The certificates a webhook configuration's `caBundle` may hold: trust anchors, nothing else.

The API server reads `clientConfig.caBundle` as PEM "CERTIFICATE" blocks and verifies the
webhook's serving certificate against them (Go's x509.CertPool.AppendCertsFromPEM skips any
other block). Whatever the bundle holds is stored in the cluster, readable by anyone who can
read webhook configurations, so a private key must never get there.
"""

import datetime
import re

from cryptography import x509

from injector.errors import InvalidCaBundle

# RFC 7468 section 2: the label of each encapsulation boundary.
_PEM_LABEL = re.compile(rb"^-----BEGIN ([^-\r\n]*)-----\s*$", re.MULTILINE)


def check_trust_anchors(pem: bytes, source: str) -> list[x509.Certificate]:
    """The certificates of `pem`, each a CA certificate valid now.

    A trust anchor here is an X.509 certificate whose basicConstraints say cA (RFC 5280
    4.2.1.9) and whose keyUsage, if present, allows keyCertSign (RFC 5280 4.2.1.3): one that
    can have signed a serving certificate. Raises InvalidCaBundle, naming `source`, for
    anything else: a private key (without quoting it), another PEM block, text that is not
    PEM, a certificate that is not a CA, expired or not yet valid.
    """
    labels = [label.decode("ascii", "replace") for label in _PEM_LABEL.findall(pem)]
    if any("PRIVATE KEY" in label for label in labels):
        raise InvalidCaBundle(
            f"{source} holds a PRIVATE KEY: refusing to put it in the webhook configuration, "
            "where anyone who can read the cluster's webhook configurations would see it; "
            "give the CA's certificate (ca.crt), not its key"
        )
    if not labels:
        raise InvalidCaBundle(f"{source} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    others = sorted(set(labels) - {"CERTIFICATE"})
    if others:
        raise InvalidCaBundle(
            f"{source} holds a {others[0]} block: a CA bundle holds only CERTIFICATE blocks"
        )
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise InvalidCaBundle(f"{source} holds a CERTIFICATE block that does not parse") from None
    now = datetime.datetime.now(datetime.UTC)
    for number, certificate in enumerate(certificates, start=1):
        where = f"{source} certificate {number} ({certificate.subject.rfc4514_string()})"
        problem = _not_a_trust_anchor(certificate, now)
        if problem:
            raise InvalidCaBundle(f"{where} {problem}")
    return certificates


def _not_a_trust_anchor(certificate: x509.Certificate, now: datetime.datetime) -> str | None:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return "is not a CA certificate (it has no basicConstraints)"
    if not constraints.value.ca:
        return "is not a CA certificate (basicConstraints cA is false): give the CA's certificate"
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_cert_sign:
        return "may not sign certificates (its keyUsage lacks keyCertSign)"
    if now > certificate.not_valid_after_utc:
        return f"expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if now < certificate.not_valid_before_utc:
        return f"is not valid before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    return None
