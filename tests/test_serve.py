"""`injector serve` and `make serve` as a user runs them: the URL they serve on, start-up
mistakes that end the command with one line, and a configuration file given field by field."""

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import orjson
import pytest
import requests
from admission_data import apply_patch, captured, decode_patch
from fake_secret_manager import running
from processes import end_group, start_group
from server import REPO, run_server, wait_for_url

from injector.core.config import InjectorConfig, parse_config
from injector.core.keys import PROXY_CONTAINER

TIMEOUT = 60.0
TOKEN = "a-token-of-the-right-form-0123"


def serve(args: list[str], env: Mapping[str, str], tmp_path: Path) -> tuple[int, str, str]:
    """Runs `injector serve ARGS` to its end (or TIMEOUT): exit code, stdout and stderr."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("INJECTOR_")}
    command = [sys.executable, "-m", "injector", "serve", "--port", "0", *args]
    process = start_group(
        command,
        cwd=tmp_path,
        env={**environment, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        end_group(process)
        pytest.fail(f"serve {args} {env} did not end: it is serving")
    return process.returncode, stdout, stderr


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("certs")
    command = [sys.executable, "-m", "injector", "certs", "--out-dir", str(out)]
    subprocess.run([*command, "--host", "127.0.0.1"], cwd=REPO, check=True, capture_output=True)
    return out


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--config", "nope.yaml"],
            {},
            "the configuration nope.yaml cannot be read: No such file or directory",
        ),
        (
            [],
            {"INJECTOR_CONFIG_FILE": "nope.yaml"},
            "the configuration nope.yaml cannot be read: No such file or directory",
        ),
        (
            [],
            {"INJECTOR_TOKENS": "short"},
            "INJECTOR_TOKENS: token 1 is not 16 to 256 characters from A-Z, a-z, 0-9, '-' and '_'",
        ),
        (
            [],
            {"INJECTOR_TOKENS": TOKEN, "INJECTOR_TOKENS_SECRET": "projects/p/secrets/t/versions/1"},
            "set only one of INJECTOR_TOKENS and INJECTOR_TOKENS_SECRET",
        ),
        (
            [],
            {
                "INJECTOR_CONFIG_FILE": "a.yaml",
                "INJECTOR_CONFIG_SECRET": "projects/p/secrets/c/versions/1",
            },
            "set only one of INJECTOR_CONFIG_FILE and INJECTOR_CONFIG_SECRET",
        ),
        (
            [],
            {"INJECTOR_REFRESH_SECONDS": "0"},
            "INJECTOR_REFRESH_SECONDS: expected 1 to 86400 seconds, got '0'",
        ),
        (
            ["--tls-cert", "missing/tls.crt", "--tls-key", "missing/tls.key"],
            {},
            "--tls-cert missing/tls.crt cannot be read: No such file or directory",
        ),
    ],
)
def test_a_start_up_mistake_ends_serve_with_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    code, stdout, stderr = serve(args, env, tmp_path)
    assert (code, stderr) == (1, f"error: {message}\n")
    assert "Traceback" not in stdout


def test_a_usage_error_ends_serve_with_one_line_and_exit_code_2(tmp_path: Path) -> None:
    code, stdout, stderr = serve(["--tls-cert", "tls.crt"], {}, tmp_path)
    assert (code, stderr) == (2, "error: --tls-cert and --tls-key go together\n")
    assert "Traceback" not in stdout


def test_an_invalid_configuration_ends_serve_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("proxy: {uid: -5}\n")
    code, _, stderr = serve(["--config", "config.yaml"], {}, tmp_path)
    assert (code, stderr) == (
        1,
        "error: config.yaml: invalid configuration: proxy.uid: Input should be greater than or "
        "equal to 1\n",
    )


def test_an_unreadable_secret_ends_serve(tmp_path: Path) -> None:
    with running() as fake:
        env = {
            "INJECTOR_CONFIG_SECRET": "projects/p/secrets/missing/versions/latest",
            "INJECTOR_SECRET_MANAGER_ENDPOINT": fake.endpoint,
        }
        code, _, stderr = serve([], env, tmp_path)
    assert code == 1
    assert stderr.startswith("error: ") and stderr.count("\n") == 1
    assert "projects/p/secrets/missing" in stderr


@pytest.mark.parametrize(
    ("cert", "key", "message"),
    [
        ("tls.crt", "ca.key", "--tls-key {key} is not the private key of --tls-cert {cert}"),
        (
            "tls.key",
            "tls.key",
            "--tls-cert {cert} and --tls-key {key} are not a PEM certificate chain and its "
            "unencrypted private key",
        ),
    ],
)
def test_tls_files_that_do_not_belong_together_end_serve(
    tmp_path: Path, certs: Path, cert: str, key: str, message: str
) -> None:
    cert_path, key_path = certs / cert, certs / key
    args = ["--tls-cert", str(cert_path), "--tls-key", str(key_path)]
    code, _, stderr = serve(args, {}, tmp_path)
    assert (code, stderr) == (1, f"error: {message.format(cert=cert_path, key=key_path)}\n")


def test_make_serve_prints_the_url_it_serves_on(tmp_path: Path) -> None:
    log_path = tmp_path / "make-serve.log"
    with log_path.open("wb") as log:
        process = start_group(
            ["make", "--no-print-directory", "-s", "serve", "PORT=0"],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = wait_for_url(process, log_path, timeout=120)
        assert url.startswith("http://127.0.0.1:")
        health = requests.get(f"{url}/healthz", timeout=30)
        assert health.status_code == 200
        assert health.json()["config"]["source"] == "embedded"
    finally:
        end_group(process)


def test_a_configuration_file_changes_only_the_fields_it_gives(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("proxy:\n  resources:\n    limits: {memory: 2Gi}\n")
    expected = InjectorConfig().model_dump(by_alias=True, mode="json")
    expected["proxy"]["resources"]["limits"]["memory"] = "2Gi"
    with run_server(tmp_path, {"INJECTOR_CONFIG_FILE": str(config)}, serve=True) as server:
        health = requests.get(f"{server.url}/healthz", timeout=30).json()
        answer = requests.post(
            f"{server.url}/",
            data=captured("b-minimal-pod.json"),
            headers={"Content-Type": "application/json"},
            timeout=30,
        ).json()["response"]
    # The digest names what is in effect: the file merged over the embedded default.
    effective = parse_config(orjson.dumps(expected))
    assert health["config"] == {
        "source": "file",
        "version": str(config),
        "digest": effective.digest(),
    }
    assert effective.digest() != InjectorConfig().digest()
    sent = orjson.loads(captured("b-minimal-pod.json"))["request"]["object"]
    pod = apply_patch(sent, decode_patch(answer))
    [proxy] = [c for c in pod["spec"]["initContainers"] if c["name"] == PROXY_CONTAINER]
    assert proxy["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
