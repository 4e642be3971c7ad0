"""The Terraform in terraform/ agrees with the code it deploys, and passes fmt and checkov."""

import ast
import itertools
import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic.alias_generators import to_camel
from terraform_files import (
    REPO,
    TERRAFORM_DIR,
    Terraform,
    evaluate,
    function_source_files,
    references_in,
    strings_in,
    terraform_binary,
)

from injector.cluster.webhook_config import build_webhook_configuration
from injector.core.config import InjectorConfig, parse_config
from injector.service.logs import JsonFormatter
from injector.service.sources import TOKEN, SecretConfig, SecretTokens, environment, parse_tokens
from injector.service.webhook import Webhook

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
# Offline: no external modules to download, and only the Terraform framework.
CHECKOV_ARGS = ("-d", "terraform", "--framework", "terraform", "--skip-download", "-o", "json")
URL = "https://example.invalid/token"
FUNCTION = "google_cloudfunctions2_function.injector"
WEBHOOK = "kubernetes_mutating_webhook_configuration_v1.injector"

needs_terraform = pytest.mark.skipif(
    terraform_binary() is None,
    reason="no terraform binary on PATH (Cloud Build checks the Terraform in its own steps)",
)


@pytest.fixture(scope="module")
def terraform() -> Terraform:
    return Terraform.load()


def kubernetes_form(block: Mapping[str, Any]) -> dict[str, Any]:
    """A Terraform webhook block in the Kubernetes API's shape: camelCase keys, the repeatable
    blocks (rule, match_expressions) as lists and the others as single objects."""
    repeatable = {"rule": "rules", "match_expressions": "matchExpressions"}
    shaped: dict[str, Any] = {}
    for key, value in block.items():
        is_block = isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
        if is_block and key in repeatable:
            shaped[repeatable[key]] = [kubernetes_form(item) for item in value]
        elif is_block:
            (single,) = value
            shaped[to_camel(key)] = kubernetes_form(single)
        else:
            shaped[to_camel(key)] = value
    return shaped


# --- formatting and policy


@needs_terraform
def test_terraform_files_are_formatted() -> None:
    result = subprocess.run(
        [str(terraform_binary()), "fmt", "-check", "-recursive", "terraform"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{result.stdout}"


def test_checkov_finds_no_failed_check() -> None:
    assert CHECKOV.exists(), (
        f"{CHECKOV} is missing: run `make test`, whose Makefile target creates the checkov venv"
    )
    result = subprocess.run(
        [str(CHECKOV), *CHECKOV_ARGS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.stdout.startswith("{"), f"checkov did not report:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
        for check in report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert report["summary"]["parsing_errors"] == 0, report["results"]["parsing_errors"]
    assert report["summary"]["passed"] > 0, "checkov evaluated no check"
    for check in report["results"]["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason.split()) >= 5, f"{check['check_id']} is skipped without a real reason"


# --- the function and its source


def http_function_in_main_py() -> str:
    """The one function main.py exports, checked to load as an HTTP function the way
    functions-framework loads the deployed source."""
    tree = ast.parse((REPO / "main.py").read_text())
    (exported,) = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__"
    )
    program = (
        "import functions_framework, sys\n"
        f"app = functions_framework.create_app(target={exported!r}, source='main.py')\n"
        "assert app.test_client().get('/healthz').status_code == 200\n"
    )
    subprocess.run([sys.executable, "-c", program], cwd=REPO, check=True, capture_output=True)
    return exported


def test_function_runs_main_py_http_function_on_python312(terraform: Terraform) -> None:
    (build,) = terraform.resource(FUNCTION)["build_config"]
    assert build["entry_point"] == http_function_in_main_py() == "mutate"
    assert build["runtime"] == "python312"


def runtime_files() -> set[str]:
    """What the function needs: main.py, requirements.txt and the injector package's modules."""
    modules = {
        path.relative_to(REPO).as_posix()
        for path in (REPO / "injector").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    return {"main.py", "requirements.txt"} | modules


def imported_repository_files(entry: str) -> set[str]:
    """The repository's Python files that `entry` imports, directly or not."""
    found: set[str] = set()
    pending = [entry]
    while pending:
        current = pending.pop()
        if current in found:
            continue
        found.add(current)
        for node in ast.walk(ast.parse((REPO / current).read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                for candidate in (
                    f"{name.replace('.', '/')}.py",
                    f"{name.replace('.', '/')}/__init__.py",
                ):
                    if (REPO / candidate).is_file():
                        pending.append(candidate)
    return found


def test_archive_holds_exactly_the_runtime_files(terraform: Terraform) -> None:
    archive = terraform.data_sources["archive_file.function_source"]
    assert archive["type"] == "zip"
    assert not {"source_dir", "source_file", "excludes"} & archive.keys(), "use the include list"
    ((label, source),) = archive["dynamic"][0].items()
    assert label == "source"
    assert source["for_each"] == "${local.function_source_files}"
    (content,) = source["content"]
    assert content == {
        "content": '${file("${local.repository_root}/${source.value}")}',
        "filename": "${source.value}",
    }

    files = function_source_files(terraform)
    assert files == runtime_files()
    assert imported_repository_files("main.py") <= files, "main.py imports a file left out"
    assert not any(f.startswith(("tests/", "terraform/")) or "__pycache__" in f for f in files)


def test_every_code_change_redeploys_the_function(terraform: Terraform) -> None:
    source_object = terraform.resource("google_storage_bucket_object.function_source")
    assert "${data.archive_file.function_source.output_sha256}" in source_object["name"]
    assert source_object["source"] == "${data.archive_file.function_source.output_path}"
    (build,) = terraform.resource(FUNCTION)["build_config"]
    (storage,) = build["source"][0]["storage_source"]
    assert storage["object"] == "${google_storage_bucket_object.function_source.name}"


def test_source_bucket_is_private(terraform: Terraform) -> None:
    bucket = terraform.resource("google_storage_bucket.function_source")
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"


def test_function_stays_warm_and_serves_requests_concurrently(terraform: Terraform) -> None:
    (service,) = terraform.resource(FUNCTION)["service_config"]
    service = terraform.resolve(service, {})
    assert service["min_instance_count"] >= 1
    assert service["max_instance_request_concurrency"] > 1
    assert float(service["available_cpu"]) >= 1
    timeout = re.fullmatch(
        r"\$\{var\.webhook_timeout_seconds \+ (\d+)\}", service["timeout_seconds"]
    )
    assert timeout and int(timeout[1]) > 0, "the request timeout must exceed the webhook's"


def environment_variables_read_by_sources() -> set[str]:
    tree = ast.parse((REPO / "injector" / "service" / "sources.py").read_text())
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"INJECTOR_[A-Z_]+", node.value)
    }


def test_function_environment_is_what_the_injector_reads(terraform: Terraform) -> None:
    (service,) = terraform.resource(FUNCTION)["service_config"]
    variables = terraform.resolve(service["environment_variables"], {})
    assert variables.keys() <= environment_variables_read_by_sources()

    def secret_version(value: str) -> str:
        return re.sub(
            r"\$\{google_secret_manager_secret\.(\w+)\.id\}",
            lambda m: f"projects/my-project/secrets/{m[1]}",
            value,
        )

    env = environment({name: secret_version(str(value)) for name, value in variables.items()})
    assert isinstance(env.config, SecretConfig)
    assert env.config.version_name == "projects/my-project/secrets/injector_config/versions/latest"
    assert isinstance(env.tokens, SecretTokens), "without tokens the function serves any path"
    assert env.tokens.version_name == "projects/my-project/secrets/tokens/versions/latest"
    assert env.refresh_seconds == terraform.variables["refresh_seconds"]["default"]
    assert env.on_error == "deny"


def test_public_invocation_is_on_the_function_service(terraform: Terraform) -> None:
    invoker = terraform.resource("google_cloud_run_v2_service_iam_member.public_invoker")
    assert invoker["role"] == "roles/run.invoker"
    assert invoker["member"] == "allUsers"
    assert invoker["name"] == f"${{{FUNCTION}.service_config[0].service}}"


def test_runtime_service_account_only_reads_the_two_secrets(terraform: Terraform) -> None:
    (service,) = terraform.resource(FUNCTION)["service_config"]
    assert service["service_account_email"] == "${google_service_account.runtime.email}"
    grants = {
        address: body
        for address, body in terraform.resources.items()
        if "google_service_account.runtime" in references_in(body, "resource")
        and ("member" in body or "members" in body)
    }
    assert grants.keys() == {"google_secret_manager_secret_iam_member.runtime_reads"}
    grant = grants["google_secret_manager_secret_iam_member.runtime_reads"]
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    assert set(grant["for_each"].values()) == {
        "${google_secret_manager_secret.injector_config.secret_id}",
        "${google_secret_manager_secret.tokens.secret_id}",
    }


# --- the webhook


def test_webhook_matches_the_webhook_config_command(terraform: Terraform) -> None:
    config = InjectorConfig()
    expected = build_webhook_configuration(config, URL)
    resource = terraform.resource(WEBHOOK)
    given = {
        "local.annotation_prefix": config.annotation_prefix,
        "local.excluded_namespaces": list(config.excluded_namespaces),
        "local.webhook_url": URL,
    }
    webhooks = [kubernetes_form(block) for block in terraform.resolve(resource["webhook"], given)]
    assert webhooks == expected["webhooks"]
    assert terraform.resolve(resource["metadata"][0]["name"], given) == expected["metadata"]["name"]


def test_webhook_url_is_the_function_uri_and_the_token_over_https(terraform: Terraform) -> None:
    for webhook in terraform.resource(WEBHOOK)["webhook"]:
        assert webhook["client_config"] == [{"url": "${local.webhook_url}"}]
    assert terraform.locals["webhook_url"] == (
        f'${{sensitive("${{{FUNCTION}.service_config[0].uri}}/${{local.webhook_token}}")}}'
    )
    assert terraform.locals["webhook_token"] == (
        "${random_password.token[local.webhook_token_slot].result}"
    )
    (precondition,) = terraform.resource(WEBHOOK)["lifecycle"][0]["precondition"]
    assert precondition["condition"] == (
        f'${{startswith({FUNCTION}.service_config[0].uri, "https://")}}'
    )


def test_the_token_secret_holds_every_slot_in_the_function_token_form(
    terraform: Terraform,
) -> None:
    token = terraform.resource("random_password.token")
    assert token["for_each"] == "${local.token_slot_rotations}"
    assert token["special"] is False, "only [A-Za-z0-9]: a subset of the token alphabet"
    assert TOKEN.match("a" * token["length"])
    version = terraform.resource("google_secret_manager_secret_version.tokens")
    assert version["secret_data"] == "${local.tokens_payload}"
    payload = re.fullmatch(
        r'\$\{join\("(?P<separator>[^"]*)", '
        r"\[for slot in local\.token_slots : random_password\.token\[slot\]\.result\]\)\}",
        terraform.locals["tokens_payload"],
    )
    assert payload, "the token secret must hold the token of every slot"
    separator = payload["separator"].encode().decode("unicode_escape")
    samples = [letter * token["length"] for letter in "abc"]
    assert parse_tokens(separator.join(samples)) == tuple(samples)
    assert len(terraform.locals["token_slots"]) == 3


# --- variables, references, outputs


def test_every_variable_has_a_type_and_description_and_is_used(terraform: Terraform) -> None:
    used = references_in(terraform.everything_but("variable"), "var")
    for name, variable in terraform.variables.items():
        assert variable.get("type"), f"variable {name} has no type"
        assert variable.get("description"), f"variable {name} has no description"
        assert name in used, f"variable {name} is never used"


def test_every_reference_names_something_declared(terraform: Terraform) -> None:
    everything = list(terraform.files.values())
    assert references_in(everything, "var") <= terraform.variables.keys()
    assert references_in(everything, "local") <= terraform.locals.keys()
    assert references_in(everything, "resource") <= terraform.resources.keys()
    assert references_in(everything, "data") <= terraform.data_sources.keys()


def test_every_local_is_used(terraform: Terraform) -> None:
    used = references_in(list(terraform.files.values()), "local")
    assert terraform.locals.keys() <= used


def depends_on_a_token(terraform: Terraform, value: Any) -> bool:
    """Whether a value derives from a generated token, through locals."""
    if any(ref.startswith("random_password.") for ref in references_in(value, "resource")):
        return True
    return any(
        depends_on_a_token(terraform, terraform.locals[name])
        for name in references_in(value, "local")
    )


def test_outputs_that_carry_the_token_are_sensitive(terraform: Terraform) -> None:
    outputs = terraform.outputs
    assert {"function_uri", "webhook_configuration_name", "config_secret", "tokens_secret"} <= (
        outputs.keys()
    )
    assert not depends_on_a_token(terraform, outputs["function_uri"]["value"])
    carrying = {name for name, output in outputs.items() if depends_on_a_token(terraform, output)}
    assert "webhook_url" in carrying
    for name in carrying:
        assert outputs[name].get("sensitive") is True, f"output {name} carries the token"


def test_tfvars_example_names_every_variable(terraform: Terraform) -> None:
    example = (TERRAFORM_DIR / "terraform.tfvars.example").read_text()
    named = set(re.findall(r"^#?\s*(\w+)\s+=", example, flags=re.MULTILINE))
    assert named == terraform.variables.keys()


# --- the injector configuration


def test_committed_injector_config_is_valid_and_the_default(terraform: Terraform) -> None:
    path = TERRAFORM_DIR / terraform.variables["injector_config_file"]["default"]
    config = parse_config(path.read_text())
    assert config.annotation_prefix == InjectorConfig().annotation_prefix
    assert config.excluded_namespaces == InjectorConfig().excluded_namespaces


CONFIG_CASES = {
    "committed": (TERRAFORM_DIR / "injector-config.yaml").read_text(),
    "empty": "{}\n",
    "yaml": "annotationPrefix: mesh.example.com\nexcludedNamespaces: [istio-system, monitoring]\n",
    "json": '{"annotation_prefix": "x.example.org", "excluded_namespaces": ["ops"]}',
}


@needs_terraform
@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_selectors_follow_the_injector_config(case: str, tmp_path: Path) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(CONFIG_CASES[case])
    extra = ["team-a", "kube-system"]
    derived = evaluate(
        ["injector_config.tf"],
        {"injector_config_file": str(config_file), "extra_excluded_namespaces": extra},
        "{prefix = local.annotation_prefix, excluded = local.excluded_namespaces}",
        tmp_path,
    )
    config = parse_config(CONFIG_CASES[case])
    expected = build_webhook_configuration(config, URL, extra_excluded_namespaces=tuple(extra))
    (namespace_webhook, object_webhook) = expected["webhooks"]
    assert derived["prefix"] == config.annotation_prefix
    assert namespace_webhook["name"] == f"namespace.webhook.{derived['prefix']}"
    assert object_webhook["objectSelector"]["matchExpressions"][0]["key"] == (
        f"{derived['prefix']}/inject"
    )
    assert (
        derived["excluded"]
        == namespace_webhook["namespaceSelector"]["matchExpressions"][1]["values"]
    )


# --- token rotation


def rotation_states(tmp_path: Path, rotations: range) -> Iterator[tuple[dict[str, int], str]]:
    for rotation in rotations:
        workdir = tmp_path / str(rotation)
        workdir.mkdir()
        state = evaluate(
            ["token_rotation.tf"],
            {"token_rotation": rotation},
            "{slots = local.token_slot_rotations, webhook = local.webhook_token_slot}",
            workdir,
        )
        yield state["slots"], state["webhook"]


@needs_terraform
def test_token_rotation_never_refuses_a_call(tmp_path: Path) -> None:
    """Each step regenerates one token, never the one the URL leaves nor the one it moves to."""
    states = list(rotation_states(tmp_path, range(1, 8)))
    for rotation, (slots, webhook_slot) in enumerate(states, start=1):
        assert slots[webhook_slot] == rotation, "the URL uses the current rotation's token"
    for (before, webhook_before), (after, webhook_after) in itertools.pairwise(states):
        regenerated = {slot for slot in before if before[slot] != after[slot]}
        assert len(regenerated) == 1
        assert webhook_before not in regenerated, "the old URL stays valid"
        assert webhook_after not in regenerated, "the new URL was accepted before the switch"
        assert webhook_after != webhook_before


# --- monitoring


@pytest.fixture
def review_log_line() -> dict[str, Any]:
    """The log line the webhook writes for one admission review, as Cloud Logging reads it."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("injector")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "0b8e5b8c-1",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "default",
                "operation": "CREATE",
                "object": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "app"},
                    "spec": {"containers": [{"name": "app", "image": "nginx"}]},
                },
            },
        }
        Webhook.from_environment({}).review(orjson.dumps(review))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = [json.loads(JsonFormatter().format(record)) for record in records]
    (line,) = [line for line in lines if line["message"] == "admission review"]
    return line


def test_review_metrics_read_fields_the_webhook_logs(
    terraform: Terraform, review_log_line: dict[str, Any]
) -> None:
    review_filter = terraform.resolve(terraform.locals["review_logs"], {})
    matches = re.findall(r'jsonPayload\.(\w+)="([^"]*)"', review_filter)
    assert matches, "the review metrics select no log line"
    for field, value in matches:
        assert review_log_line[field] == value
    for metric in ("reviews", "review_latency"):
        body = terraform.resource(f"google_logging_metric.{metric}")
        assert body["filter"] == "${local.review_logs}"
        extracted = re.findall(r"EXTRACT\(jsonPayload\.(\w+)\)", " ".join(strings_in(body)))
        assert extracted and set(extracted) <= review_log_line.keys()
    latency = terraform.resource("google_logging_metric.review_latency")
    assert latency["value_extractor"] == "EXTRACT(jsonPayload.latency_ms)"
    assert isinstance(review_log_line["latency_ms"], float)


def test_metrics_count_the_logs_of_the_function_cloud_run_service(terraform: Terraform) -> None:
    assert terraform.locals["function_logs"] == (
        'resource.type="cloud_run_revision" AND '
        'resource.labels.service_name="${local.run_service_name}"'
    )
    assert terraform.locals["run_service_name"] == (
        f'${{reverse(split("/", {FUNCTION}.service_config[0].service))[0]}}'
    )
    errors = terraform.resource("google_logging_metric.errors")
    assert errors["filter"] == "${local.function_logs} AND severity>=ERROR"


def test_alert_fires_on_the_error_metric(terraform: Terraform) -> None:
    alert = terraform.resource("google_monitoring_alert_policy.errors")
    assert alert["notification_channels"] == "${var.alert_notification_channels}"
    (condition,) = alert["conditions"]
    (threshold,) = condition["condition_threshold"]
    assert "${google_logging_metric.errors.name}" in threshold["filter"]
    assert threshold["comparison"] == "COMPARISON_GT"
