"""What is shipped works on its own: the function from exactly the files Terraform archives, and
the package installed with pip from a clean checkout, each in a fresh virtual environment."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests
from admission_data import apply_patch, captured, decode_patch
from processes import end_group, start_group
from server import REPO, free_port, wait_for_port
from terraform_files import Terraform, function_source_files

TIMEOUT = 300  # seconds; a fresh venv installs the requirements (from pip's cache when warm)
POD = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
"""


def fresh_venv(path: Path, *install: str) -> Path:
    """A new virtual environment with `pip install <install>`; its bin directory."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=TIMEOUT)
    pip = [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(
        [*pip, "--disable-pip-version-check", *install],
        check=True,
        timeout=TIMEOUT,
        capture_output=True,
    )
    return path / "bin"


def copy_files(files: set[str], destination: Path) -> None:
    """Copies repository files, keeping their relative paths and nothing else."""
    for name in files:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((REPO / name).read_bytes())


@pytest.fixture(scope="module")
def function_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The function's source as Cloud Functions builds it: the archive's files and nothing else."""
    directory = tmp_path_factory.mktemp("function-source")
    copy_files(function_source_files(Terraform.load()), directory)
    return directory


@pytest.fixture(scope="module")
def function_url(function_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    bin_dir = fresh_venv(tmp_path_factory.mktemp("venv") / "function", "-r", "requirements.txt")
    port = free_port()
    log_path = function_dir.parent / "function.log"
    with log_path.open("wb") as log_file:
        process = start_group(
            [
                str(bin_dir / "functions-framework"),
                "--target=mutate",
                "--source=main.py",
                "--host=127.0.0.1",
                f"--port={port}",
            ],
            cwd=function_dir,
            env={"PATH": str(bin_dir), "HOME": str(function_dir)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log_path, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        end_group(process)


def test_the_function_runs_from_the_archived_files_alone(function_dir, function_url) -> None:
    assert not (function_dir / "tests").exists()
    assert not list(function_dir.glob("*.egg-info"))
    body = captured("b-minimal-pod.json")
    response = requests.post(
        function_url, data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 200
    answer = response.json()["response"]
    pod = orjson.loads(body)["request"]["object"]
    injected = apply_patch(pod, decode_patch(answer))
    assert [c["name"] for c in injected["spec"]["initContainers"]][:3] == [
        "mesh-init",
        "mesh-init-ipv6",
        "mesh-proxy",
    ]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install .` from a clean checkout of the working tree (tracked and new files)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout
    files = {name for name in listed.decode().split("\0") if name and (REPO / name).is_file()}
    checkout = tmp_path_factory.mktemp("checkout")
    copy_files(files, checkout)
    return fresh_venv(tmp_path_factory.mktemp("venv") / "package", str(checkout))


def test_the_installed_command_works_from_any_directory(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text(POD)
    for command in ([str(installed / "injector")], [str(installed / "python"), "-m", "injector"]):
        usage = subprocess.run(
            [*command, "--help"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert usage.returncode == 0, usage.stderr
        assert "inject" in usage.stdout and "serve" in usage.stdout

    result = subprocess.run(
        [str(installed / "injector"), "inject", "-f", "web.yaml", "-o", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("web.yaml document 1: Deployment/web: injected")
    template = orjson.loads(result.stdout)["spec"]["template"]
    assert [c["name"] for c in template["spec"]["initContainers"]] == [
        "mesh-init",
        "mesh-init-ipv6",
        "mesh-proxy",
    ]


def test_the_package_holds_every_module_and_nothing_else(installed: Path) -> None:
    site = next((installed.parent / "lib").glob("python3*/site-packages"))
    shipped = {path.relative_to(site).as_posix() for path in (site / "injector").rglob("*.py")}
    expected = {path.relative_to(REPO).as_posix() for path in (REPO / "injector").rglob("*.py")}
    assert shipped == expected
