"""Stand-ins for the API server's ServiceAccount token issuer and the kubelet's token volume.

A projected ServiceAccount token (Kubernetes API, `ServiceAccountTokenProjection`) is a JWT the
API server signs for one audience, with the Pod's ServiceAccount as subject; the kubelet
writes it into the volume and rewrites it before it expires. The kubelet writes every
projected volume with its atomic writer: the files go into a new hidden directory, the `..data`
symlink is switched to it with one rename, and each visible file is a symlink through `..data`,
so a reader sees the old file or the new one, never a partial one.
"""

import datetime
import os
import secrets
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ISSUER = "https://kubernetes.default.svc.cluster.local"
API_SERVER_AUDIENCE = ISSUER  # a projection's audience when it names none


class TokenIssuer:
    """Signs ServiceAccount tokens (ES256) with a key of its own."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key_pem(self) -> str:
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def issue(
        self,
        namespace: str,
        service_account: str,
        audience: str,
        expiration_seconds: int,
        pod_name: str = "",
    ) -> str:
        """A token bound to a Pod, with the claims a Kubernetes API server gives one."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
            "aud": [audience],
            "iat": now,
            "nbf": now,
            "exp": now + expiration_seconds,
            "jti": secrets.token_hex(8),
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": service_account},
                **({"pod": {"name": pod_name}} if pod_name else {}),
            },
        }
        return jwt.encode(claims, self._key, algorithm="ES256")


def write_atomically(directory: Path, files: dict[str, str], mode: int = 0o644) -> None:
    """Writes a volume's files the way the kubelet's atomic writer does (see the module)."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    payload = directory / f"{stamp}{secrets.token_hex(2)}"
    payload.mkdir(mode=0o755)
    for name, content in files.items():
        path = payload / name
        path.write_text(content)
        path.chmod(mode)
    data, staging = directory / "..data", directory / "..data_tmp"
    previous = os.readlink(data) if data.is_symlink() else None
    staging.symlink_to(payload.name)
    staging.rename(data)
    for name in files:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")
    if previous is not None:
        for item in (directory / previous).iterdir():
            item.unlink()
        (directory / previous).rmdir()
