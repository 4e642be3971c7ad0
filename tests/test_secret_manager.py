"""SecretReader through the real client library (REST transport) against a local endpoint."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_secret_manager import FakeSecretManager, running
from lines import lines
from server import REPO, free_port

from injector.errors import SecretUnavailable
from injector.service.secret_manager import SecretReader

SECRET = "projects/shop-prod/secrets/injector-config"
PAYLOAD = "proxy: {image: registry.example.com/mesh/proxy:hush-7f3a}"
DEADLINE = 0.5  # the reader's retry deadline: short, so failures show quickly


@pytest.fixture
def fake() -> Iterator[FakeSecretManager]:
    with running() as fake:
        yield fake


@pytest.fixture
def reader(fake: FakeSecretManager) -> SecretReader:
    return SecretReader(fake.endpoint, timeout_seconds=DEADLINE)


def unavailable(reader: SecretReader, name: str) -> tuple[str, float]:
    """The SecretUnavailable message for reading `name`, and how long the reader took."""
    started = time.monotonic()
    with pytest.raises(SecretUnavailable) as caught:
        reader.read(name)
    return str(caught.value), time.monotonic() - started


def test_reads_a_version_and_resolves_latest(fake: FakeSecretManager, reader: SecretReader) -> None:
    first = fake.add_version(SECRET, "first")
    second = fake.add_version(SECRET, "second")

    assert reader.read(first).version == first
    assert reader.read(first).data == b"first"
    latest = reader.read(f"{SECRET}/versions/latest")
    assert (latest.version, latest.data) == (second, b"second")
    assert fake.requests[0] == f"/v1/{first}:access"


def test_latest_is_the_newest_enabled_version(
    fake: FakeSecretManager, reader: SecretReader
) -> None:
    first = fake.add_version(SECRET, "first")
    second = fake.add_version(SECRET, "second")
    third = fake.add_version(SECRET, "third")
    fake.set_state(third, "DISABLED")
    fake.set_state(second, "DESTROYED")

    assert reader.read(f"{SECRET}/versions/latest").version == first
    message, _ = unavailable(reader, third)
    assert f"{third}] is in DISABLED state" in message


def test_an_empty_payload_with_its_zero_checksum_is_read(
    fake: FakeSecretManager, reader: SecretReader
) -> None:
    assert reader.read(fake.add_version(SECRET, "")).data == b""


@pytest.mark.parametrize("crc", ["wrong", "missing"])
def test_a_payload_failing_its_checksum_is_rejected(
    fake: FakeSecretManager, reader: SecretReader, crc: str
) -> None:
    version = fake.add_version(SECRET, PAYLOAD)
    fake.crc = crc

    message, _ = unavailable(reader, f"{SECRET}/versions/latest")
    assert message == f"the payload of {version} failed its CRC32C check"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (403, "Forbidden: 403"),
        (500, "RetryError"),  # retried until the deadline
        (503, "RetryError"),
    ],
)
def test_a_failing_service_makes_the_secret_unavailable_quickly(
    fake: FakeSecretManager, reader: SecretReader, status: int, expected: str
) -> None:
    version = fake.add_version(SECRET, PAYLOAD)
    fake.fail_with = status

    message, seconds = unavailable(reader, version)
    assert message.startswith(f"could not read {version}: ")
    assert expected in message
    assert seconds < DEADLINE + 1


def test_an_unknown_secret_is_not_found(reader: SecretReader) -> None:
    message, seconds = unavailable(reader, f"{SECRET}/versions/1")
    assert "NotFound: 404" in message
    assert seconds < 1


def test_a_stalled_service_times_out(fake: FakeSecretManager, reader: SecretReader) -> None:
    version = fake.add_version(SECRET, PAYLOAD)
    fake.stall()

    message, seconds = unavailable(reader, version)
    assert "Read timed out" in message
    assert DEADLINE <= seconds < DEADLINE + 1


def test_a_refused_connection_makes_the_secret_unavailable() -> None:
    reader = SecretReader(f"http://127.0.0.1:{free_port()}", timeout_seconds=DEADLINE)

    message, seconds = unavailable(reader, f"{SECRET}/versions/1")
    assert "Connection refused" in message
    assert seconds < DEADLINE + 1


def test_an_answer_that_is_not_json_makes_the_secret_unavailable(
    fake: FakeSecretManager, reader: SecretReader
) -> None:
    version = fake.add_version(SECRET, PAYLOAD)
    fake.garbled = True

    message, _ = unavailable(reader, version)
    assert message == f"could not read {version}: the answer is not a secret version"


def test_missing_credentials_make_the_secret_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))

    message, _ = unavailable(SecretReader(), f"{SECRET}/versions/1")
    assert "DefaultCredentialsError" in message


def imports_secret_manager(environ: dict[str, str]) -> bool:
    """Whether importing the function's module in a fresh process imports the client library."""
    script = "import sys, main; print('google.cloud.secretmanager' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INJECTOR_")} | environ
    result = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return lines(result.stdout)[-1] == "True"


def test_the_client_library_is_imported_only_for_a_secret_source(
    fake: FakeSecretManager,
) -> None:
    version = fake.add_version(SECRET, "{}")

    assert not imports_secret_manager({})
    secret_source = {
        "INJECTOR_CONFIG_SECRET": version,
        "INJECTOR_SECRET_MANAGER_ENDPOINT": fake.endpoint,
    }
    assert imports_secret_manager(secret_source)
