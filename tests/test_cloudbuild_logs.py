"""Cloud Build never shows the URL token: not in its logs, not in what outlives the build.

The build's logs go to Cloud Logging (CLOUD_LOGGING_ONLY), where everyone who may read the
project's logs reads them. Terraform's own output holds no token: the webhook URL is sensitive
(terraform/webhook.tf, tested in test_terraform.py), and so are random_password.result and a
secret version's secret_data in the providers' schemas, so plan and apply print
"(sensitive value)". What would print it is a step that asks for it (`terraform output`, `show`,
`console`, `state`), provider debug logs (TF_LOG prints the API requests, secret payloads
included), or the saved plan, which holds the token, kept as an artifact.
"""

import re
from typing import Any

import pytest
import yaml
from terraform_files import REPO

TERRAFORM_IMAGE = "hashicorp/terraform"
# Subcommands that print no value Terraform holds as sensitive.
QUIET_SUBCOMMANDS = {"fmt", "init", "plan", "apply"}


@pytest.fixture(scope="module")
def build() -> dict[str, Any]:
    return yaml.safe_load((REPO / "cloudbuild.yaml").read_text())


def terraform_subcommands(step: dict[str, Any]) -> list[list[str]]:
    """Each terraform command a step runs, as [subcommand, arguments...]."""
    args = [str(arg) for arg in step.get("args", [])]
    if step["name"].startswith(f"{TERRAFORM_IMAGE}:") and "entrypoint" not in step:
        return [args]
    script = " ".join(args)
    return [line.split() for line in re.findall(r"\bterraform\s+([^\n;&|]*)", script)]


def test_terraform_steps_print_no_sensitive_value(build: dict[str, Any]) -> None:
    commands = [command for step in build["steps"] for command in terraform_subcommands(step)]
    assert {command[0] for command in commands} == QUIET_SUBCOMMANDS
    applies = [command for command in commands if command[0] == "apply"]
    assert applies == [["apply", "-input=false", "tfplan"]], "apply only the reviewed plan"


def test_no_step_turns_on_terraform_debug_logs(build: dict[str, Any]) -> None:
    environments = [build.get("options", {}).get("env", [])]
    environments += [step.get("env", []) for step in build["steps"]]
    variables = {entry.split("=", 1)[0] for env in environments for entry in env}
    assert variables, "the build sets its Terraform variables through env"
    assert not {name for name in variables if name.startswith("TF_LOG")}


def test_the_saved_plan_stays_in_the_build_workspace(build: dict[str, Any]) -> None:
    assert "artifacts" not in build
    uses_plan = {
        step["id"] for step in build["steps"] if any("tfplan" in str(a) for a in step["args"])
    }
    assert uses_plan == {"terraform-plan", "terraform-apply"}
