"""Reads Secret Manager secret versions, checking each payload's CRC32C.

The client library is imported on first use only: it costs a few hundred milliseconds, which a
webhook on its embedded configuration should not pay at cold start.
"""

import re
import threading
from dataclasses import dataclass
from typing import Any

from injector.errors import SecretUnavailable

VERSION_NAME = re.compile(r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$")
VERSION_FORM = "projects/PROJECT/secrets/SECRET/versions/VERSION (VERSION may be latest)"


@dataclass(frozen=True)
class SecretPayload:
    version: str  # the resolved version name, e.g. projects/123/secrets/config/versions/7
    data: bytes


def check_version_name(name: str) -> str:
    if not VERSION_NAME.match(name):
        raise ValueError(f"{name!r} is not a secret version name: expected {VERSION_FORM}")
    return name


class SecretReader:
    """A lazily created Secret Manager client over REST.

    `endpoint` points the client at another server (for example http://127.0.0.1:8085 in
    tests); it is then called with anonymous credentials. Transient failures are retried until
    `timeout_seconds` have passed, and each attempt is given as long. A failed read, including
    one without credentials, raises SecretUnavailable.
    """

    def __init__(self, endpoint: str | None = None, timeout_seconds: float = 5.0):
        self._endpoint = endpoint
        self._timeout = timeout_seconds
        self._client: Any = None
        self._lock = threading.Lock()

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud import secretmanager

                options: dict[str, Any] = {"transport": "rest"}
                if self._endpoint:
                    from google.auth.credentials import AnonymousCredentials

                    options["client_options"] = {"api_endpoint": self._endpoint}
                    options["credentials"] = AnonymousCredentials()
                self._client = secretmanager.SecretManagerServiceClient(**options)
            return self._client

    def read(self, version_name: str) -> SecretPayload:
        import google_crc32c
        from google.api_core import exceptions, retry
        from google.auth.exceptions import GoogleAuthError
        from google.protobuf.json_format import Error as JsonFormatError

        try:
            response = self._get_client().access_secret_version(
                request={"name": version_name},
                retry=retry.Retry(timeout=self._timeout),
                timeout=self._timeout,
            )
        except (exceptions.GoogleAPIError, GoogleAuthError, OSError) as error:
            raise SecretUnavailable(
                f"could not read {version_name}: {type(error).__name__}: {error}"
            ) from None
        except JsonFormatError:
            raise SecretUnavailable(
                f"could not read {version_name}: the answer is not a secret version"
            ) from None
        payload = response.payload
        if "data_crc32c" not in payload or payload.data_crc32c != google_crc32c.value(payload.data):
            raise SecretUnavailable(f"the payload of {response.name} failed its CRC32C check")
        return SecretPayload(version=response.name, data=payload.data)
