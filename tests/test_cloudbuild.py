"""cloudbuild.yaml runs the test suite, then plans and (on main only) applies the Terraform."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from lines import lines
from processes import suite_environment
from terraform_files import REPO, Terraform

TEST_COMMAND = "make test"  # what the README and .ci/run run
USER_SUBSTITUTION = re.compile(r"\$\{(_[A-Z0-9_]+)\}|\$(_[A-Z0-9_]+)")
# Cloud Build's substitution: $$ stands for $, and $NAME or ${NAME} for a substitution's value.
SUBSTITUTION = re.compile(r"\$\$|\$\{([A-Z_][A-Z0-9_]*)\}|\$([A-Z_][A-Z0-9_]*)")


@pytest.fixture(scope="module")
def build() -> dict[str, Any]:
    return yaml.safe_load((REPO / "cloudbuild.yaml").read_text())


def steps_by_id(build: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["id"]: step for step in build["steps"]}


def command_of(step: dict[str, Any]) -> str:
    return " ".join([step.get("entrypoint", ""), *step.get("args", [])]).strip()


def substitute(text: str, values: dict[str, str]) -> str:
    return SUBSTITUTION.sub(lambda m: "$" if m[0] == "$$" else values[m[1] or m[2]], text)


def test_tests_run_with_the_test_command_on_python_312(build: dict[str, Any]) -> None:
    test = steps_by_id(build)["test"]
    assert test["name"].startswith("python:3.12")
    assert command_of(test) == TEST_COMMAND
    assert TEST_COMMAND in (REPO / "README.md").read_text()
    assert TEST_COMMAND in (REPO / ".ci" / "run").read_text()
    assert re.search(r"^test:", (REPO / "Makefile").read_text(), flags=re.MULTILINE)


def test_steps_run_in_order_tests_fmt_init_plan_apply(build: dict[str, Any]) -> None:
    ids = [step["id"] for step in build["steps"]]
    assert ids == ["test", "terraform-fmt", "terraform-init", "terraform-plan", "terraform-apply"]
    assert not any("waitFor" in step for step in build["steps"]), "each step waits for the last"
    steps = steps_by_id(build)
    assert command_of(steps["terraform-fmt"]) == "fmt -check -recursive"
    assert "-backend-config=bucket=${_STATE_BUCKET}" in steps["terraform-init"]["args"]
    assert command_of(steps["terraform-plan"]) == "plan -input=false -out=tfplan"
    for step_id in ("terraform-fmt", "terraform-init", "terraform-plan", "terraform-apply"):
        assert steps[step_id]["dir"] == "terraform"


def test_terraform_image_meets_the_required_version(build: dict[str, Any]) -> None:
    images = {step["name"] for step in build["steps"] if step["id"].startswith("terraform-")}
    (image,) = images
    repository, tag = image.split(":")
    assert repository == "hashicorp/terraform"
    (settings,) = Terraform.load().files["versions.tf"]["terraform"]
    constraint = re.fullmatch(r"~> (\d+)\.(\d+)", settings["required_version"])
    assert constraint, "expected a ~> MAJOR.MINOR constraint"
    major, minor = (int(part) for part in tag.split(".")[:2])
    assert major == int(constraint[1]) and minor >= int(constraint[2])


@pytest.mark.skipif(shutil.which("sh") is None, reason="no sh to run the apply step with")
@pytest.mark.parametrize(("branch", "applies"), [("main", True), ("feature/x", False), ("", False)])
def test_the_plan_is_applied_on_main_only(
    build: dict[str, Any], branch: str, applies: bool, tmp_path: Path
) -> None:
    apply = steps_by_id(build)["terraform-apply"]
    calls = tmp_path / "terraform-calls"
    fake = tmp_path / "bin" / "terraform"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    args = [substitute(arg, {"BRANCH_NAME": branch}) for arg in apply["args"]]
    subprocess.run(
        [apply["entrypoint"], *args],
        env=suite_environment({"PATH": f"{fake.parent}:/usr/bin:/bin"}),
        check=True,
        capture_output=True,
        timeout=30,
    )
    called = lines(calls.read_text()) if calls.exists() else []
    assert called == (["apply -input=false tfplan"] if applies else [])


def test_user_substitutions_are_declared_documented_and_used(build: dict[str, Any]) -> None:
    text = (REPO / "cloudbuild.yaml").read_text()
    header = "\n".join(line for line in lines(text) if line.startswith("#"))
    used = {a or b for a, b in USER_SUBSTITUTION.findall(yaml.safe_dump(build))}
    declared = set(build["substitutions"])
    assert used == declared
    for name in declared:
        assert re.search(rf"^#\s+{name}\s+\S", header, flags=re.MULTILINE), f"{name} undocumented"
        assert name in (REPO / "terraform" / "README.md").read_text(), f"{name} not in README"


def test_terraform_variables_come_from_the_build(build: dict[str, Any]) -> None:
    variables = Terraform.load().variables
    given = {
        entry.split("=", 1)[0].removeprefix("TF_VAR_")
        for entry in build["options"]["env"]
        if entry.startswith("TF_VAR_")
    }
    assert given <= variables.keys()
    required = {name for name, body in variables.items() if "default" not in body}
    assert required <= given, "a required variable has no value in the build"


def test_build_runs_as_its_own_service_account_logging_to_cloud_logging(
    build: dict[str, Any],
) -> None:
    assert build["serviceAccount"] == (
        "projects/$PROJECT_ID/serviceAccounts/${_DEPLOYER_SERVICE_ACCOUNT}"
    )
    assert build["options"]["logging"] == "CLOUD_LOGGING_ONLY"
