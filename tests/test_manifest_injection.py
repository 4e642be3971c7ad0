"""Injecting, uninjecting and explaining workloads: the webhook's patch, and its exact undoing."""

import copy
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from admission_data import apply_patch, decode_patch, respond
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes_schema import validate_object, validate_pod_rules
from lines import lines

from injector.core.engine import Injector
from injector.core.keys import Keys
from injector.errors import ManifestError
from injector.manifests.documents import Document, YamlStyle
from injector.manifests.explain import explanation
from injector.manifests.inject import evaluate, inject, namespace_for
from injector.manifests.read import parse_documents
from injector.manifests.uninject import uninject
from injector.manifests.workloads import Workload, find_workloads
from injector.manifests.write import to_plain, write_yaml

MANIFESTS = Path(__file__).parent / "data" / "manifests"
KEYS = Keys("injector.dev")


def webhook_template(injector: Injector, template: dict[str, Any], namespace: str) -> dict:
    """The template as the Pod the webhook would create from it: its patch applied."""
    pod = {"apiVersion": "v1", "kind": "Pod", **to_plain(template)}
    request = {
        "uid": "0d5e8e4c-manifest",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": namespace,
        "operation": "CREATE",
        "object": pod,
    }
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    answer, _ = respond(injector, orjson.dumps(body))
    response = answer["response"]
    assert response["allowed"]
    if "patch" in response:
        pod = apply_patch(pod, decode_patch(response))
    return {key: pod[key] for key in ("metadata", "spec") if key in pod}


def template_of(workload: Workload) -> dict[str, Any]:
    return {key: workload.holder[key] for key in ("metadata", "spec") if key in workload.holder}


def documents_and_workloads(text: str) -> tuple[list[Document], list[Workload]]:
    documents = parse_documents("in.yaml", text)
    return documents, [w for d in documents for w in find_workloads(d)]


def yaml_text(documents: list[Document]) -> str:
    out = io.StringIO()
    write_yaml(documents, out)
    return out.getvalue()


def inject_text(injector: Injector, text: str) -> str:
    documents, workloads = documents_and_workloads(text)
    for workload in workloads:
        inject(injector, workload, namespace_for(workload, None))
    return yaml_text(documents)


def uninject_text(text: str) -> str:
    documents, workloads = documents_and_workloads(text)
    for workload in workloads:
        uninject(workload, KEYS)
    return yaml_text(documents)


def assert_valid(documents: list[Document], workloads: list[Workload]) -> None:
    for document in documents:
        data = to_plain(document.data)
        for obj in data["items"] if data.get("kind") == "List" else [data]:
            if not obj["apiVersion"].endswith(".example.com/v1"):  # a custom resource
                validate_object(obj)
    for workload in workloads:
        template = to_plain(template_of(workload))
        validate_pod_rules(template.get("metadata") or {}, template["spec"])


MIXED = (MANIFESTS / "mixed.yaml").read_text()


@pytest.fixture(scope="module")
def injected_mixed(injector: Injector) -> str:
    return inject_text(injector, MIXED)


def test_each_template_is_what_the_webhook_makes_of_it(
    injector: Injector, injected_mixed: str
) -> None:
    originals = documents_and_workloads(MIXED)[1]
    documents, workloads = documents_and_workloads(injected_mixed)
    assert len(workloads) == len(originals) == 8
    for original, injected in zip(originals, workloads, strict=True):
        namespace = namespace_for(original, None)
        expected = webhook_template(injector, template_of(original), namespace)
        assert to_plain(template_of(injected)) == expected
    assert_valid(documents, workloads)


def test_only_pod_templates_change(injected_mixed: str) -> None:
    before = to_plain([d.data for d in documents_and_workloads(MIXED)[0]])
    after = to_plain([d.data for d in documents_and_workloads(injected_mixed)[0]])
    for old, new in zip(before, after, strict=True):
        if old["kind"] in ("Service", "ConfigMap") or old["apiVersion"].startswith("batch."):
            assert new == old
    assert after[3]["items"][2] == before[3]["items"][2]  # the Secret in the List
    assert after[0]["spec"]["selector"] == before[0]["spec"]["selector"]


def test_a_second_inject_changes_nothing(injector: Injector, injected_mixed: str) -> None:
    documents, workloads = documents_and_workloads(injected_mixed)
    outcomes = [inject(injector, w, namespace_for(w, None)) for w in workloads]
    assert yaml_text(documents) == injected_mixed
    reasons = {outcome.reason for outcome in outcomes}
    assert reasons == {"already-injected", "host-network", "opted-out"}


def test_uninject_gives_back_the_file_as_written_with_its_comments(injected_mixed: str) -> None:
    comments = [line.split("#", 1)[1] for line in lines(MIXED) if "#" in line]
    assert len(comments) == 8
    assert all(comment in injected_mixed for comment in comments)
    assert uninject_text(injected_mixed) == MIXED


def test_a_template_shared_through_a_yaml_anchor_changes_alone(injector: Injector) -> None:
    text = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
        "  selector:\n    matchLabels: &labels\n      app: web\n"
        "  template:\n    metadata:\n      labels: *labels\n"
        "    spec:\n      containers:\n      - name: app\n        image: web:1\n"
    )
    documents, [workload] = documents_and_workloads(text)
    inject(injector, workload, "default")
    data = to_plain(documents[0].data)
    assert data["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert data["spec"]["template"]["metadata"]["labels"] == {
        "app": "web",
        "injector.dev/injected": "true",
    }
    uninject(workload, KEYS)
    assert to_plain(documents[0].data) == to_plain(parse_documents("x", text)[0].data)


def test_the_namespace_is_the_one_given_else_the_objects_else_default() -> None:
    deployment = documents_and_workloads(MIXED)[1][0]
    assert namespace_for(deployment, None) == "shop"
    assert namespace_for(deployment, "kube-system") == "kube-system"
    pod_text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a}]}\n"
    [pod] = documents_and_workloads(pod_text)[1]
    assert namespace_for(pod, None) == "default"


def test_in_an_excluded_namespace_nothing_is_injected(injector: Injector) -> None:
    documents, workloads = documents_and_workloads(MIXED)
    outcomes = [inject(injector, w, "kube-system") for w in workloads]
    assert {o.reason for o in outcomes} == {"excluded-namespace"}
    assert yaml_text(documents) == MIXED


def test_an_invalid_override_is_denied_with_the_webhooks_message(injector: Injector) -> None:
    documents, [workload] = documents_and_workloads((MANIFESTS / "denied.yaml").read_text())
    outcome = inject(injector, workload, "default")
    assert (outcome.decision, outcome.reason) == ("denied", "invalid-annotation")
    assert outcome.detail == (
        "annotation injector.dev/log-level='loud' is invalid: expected one of trace, debug, "
        "info, warning, error, critical, off"
    )
    assert yaml_text(documents) == (MANIFESTS / "denied.yaml").read_text()


def test_uninject_removes_only_what_was_injected(injected_mixed: str) -> None:
    workloads = documents_and_workloads(injected_mixed)[1]
    deployment, cron_job = workloads[0].holder, workloads[5].holder
    deployment["spec"]["containers"].append({"name": "added-later", "image": "tools:1"})
    deployment["spec"]["volumes"].append({"name": "added-later", "emptyDir": {}})
    cron_job["spec"]["volumes"].insert(0, {"name": "scratch", "emptyDir": {}})  # a created list
    cron_job["metadata"]["labels"]["team"] = "reports"  # in another one
    for workload in workloads:
        uninject(workload, KEYS)
    assert [c["name"] for c in deployment["spec"]["containers"]] == ["app", "added-later"]
    assert [v["name"] for v in deployment["spec"]["volumes"]] == ["cache", "added-later"]
    assert [v["name"] for v in cron_job["spec"]["volumes"]] == ["scratch"]
    assert "initContainers" not in cron_job["spec"]
    assert cron_job["metadata"] == {"labels": {"team": "reports"}}


def test_uninject_leaves_a_workload_without_status_alone() -> None:
    documents, workloads = documents_and_workloads(MIXED)
    assert not any(uninject(w, KEYS) for w in workloads)
    assert yaml_text(documents) == MIXED


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        ("not json", ": the value is not a JSON object"),
        ("[1]", ": the value is not a JSON object"),
        ('{"containers": "mesh-proxy"}', ": containers must be a list of strings, not a string"),
        ('{"created": ["metadata"]}', ": created must list JSON Pointers"),
    ],
)
def test_a_status_the_injector_did_not_write_is_an_error(status: str, problem: str) -> None:
    obj = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {
            "template": {
                "metadata": {"annotations": {"injector.dev/status": status}},
                "spec": {"containers": [{"name": "a", "image": "a"}]},
            }
        },
    }
    [workload] = find_workloads(parse_documents("j.json", orjson.dumps(obj).decode())[0])
    with pytest.raises(ManifestError) as error:
        uninject(workload, KEYS)
    field = "spec.template.metadata.annotations[injector.dev/status]"
    assert str(error.value) == f"j.json document 1: Job/j: {field}{problem}"


def test_explain_says_what_decided_and_shows_what_is_added(injector: Injector) -> None:
    _, workloads = documents_and_workloads(MIXED)
    deployment = workloads[0]
    outcome = evaluate(injector, deployment, "shop")
    [outcome_note] = outcome.notes
    text = explanation(deployment, "shop", outcome)
    explained = lines(text)
    assert explained[:7] == [
        "in.yaml document 1: Deployment/web",
        "  namespace: shop",
        "  decision: injected",
        "  reason: injected: the default policy is enabled",
        "  override: injector.dev/log-level=debug",
        f"  note: {outcome_note}",
        "  changes to spec.template:",
    ]
    assert "    --- Deployment/web spec.template (as written)" in explained
    assert "    +++ Deployment/web spec.template (injected)" in explained
    assert "    +  initContainers:" in explained
    assert "    +    - name: mesh-proxy" in explained
    assert "    +      -A MESH_OUTPUT -m owner --uid-owner 1337 -j RETURN" in explained
    removed = [line for line in explained if line.startswith("    -") and line[5:7] != "--"]
    assert removed == []  # injection only adds
    assert to_plain(template_of(deployment)) == to_plain(
        template_of(documents_and_workloads(MIXED)[1][0])
    )


def test_explain_of_a_skipped_workload_names_the_rule(injector: Injector) -> None:
    _, workloads = documents_and_workloads(MIXED)
    job = workloads[4]
    assert explanation(job, "shop", evaluate(injector, job, "shop")) == (
        "in.yaml document 6: Job/import\n"
        "  namespace: shop\n"
        "  decision: skipped\n"
        "  reason: opted-out: annotation injector.dev/inject=false\n"
        "  changes: none\n"
    )


# Generated templates, of every workload kind.

CONTAINER_NAMES = ["app", "web", "worker", "log-shipper"]
ANNOTATION_SETS = [
    {"injector.dev/log-level": "debug"},
    {
        "injector.dev/native-sidecar": "false",
        "injector.dev/hold-application-until-proxy-ready": "false",
    },
    {"injector.dev/proxy-cpu-limit": "500m", "injector.dev/exclude-outbound-ports": "5432"},
    {"injector.dev/inject": "false"},
    {"kubectl.kubernetes.io/default-container": "app"},
    {"prometheus.io/scrape": "true"},
]
LABEL_SETS = [{"app": "web"}, {"injector.dev/inject": "true"}, {"tier": "backend"}]
KINDS = {
    "Pod": ("v1", ""),
    "ReplicationController": ("v1", "spec.template"),
    "Deployment": ("apps/v1", "spec.template"),
    "StatefulSet": ("apps/v1", "spec.template"),
    "DaemonSet": ("apps/v1", "spec.template"),
    "ReplicaSet": ("apps/v1", "spec.template"),
    "Job": ("batch/v1", "spec.template"),
    "CronJob": ("batch/v1", "spec.jobTemplate.spec.template"),
}


def merged(draw: st.DrawFn, choices: list[dict[str, str]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for chosen in draw(st.lists(st.sampled_from(choices), max_size=3, unique_by=str)):
        result.update(chosen)
    return result


@st.composite
def templates(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(CONTAINER_NAMES), min_size=1, max_size=3, unique=True))
    containers = []
    for name in names:
        container: dict[str, Any] = {"name": name, "image": f"registry.example.com/{name}:1"}
        if draw(st.booleans()):
            container["ports"] = [{"containerPort": draw(st.sampled_from([80, 8080, 15021]))}]
        containers.append(container)
    spec: dict[str, Any] = {"containers": containers}
    if draw(st.booleans()):
        spec["initContainers"] = draw(
            st.sampled_from([[], [{"name": "setup", "image": "registry.example.com/setup:1"}]])
        )
    if draw(st.booleans()):
        spec["volumes"] = draw(st.sampled_from([[], [{"name": "data", "emptyDir": {}}]]))
    if draw(st.booleans()):
        spec["hostNetwork"] = draw(st.booleans())
    template: dict[str, Any] = {}
    if draw(st.booleans()):
        metadata: dict[str, Any] = {}
        if draw(st.booleans()):
            metadata["labels"] = merged(draw, LABEL_SETS)
        if draw(st.booleans()):
            metadata["annotations"] = merged(draw, ANNOTATION_SETS)
        template["metadata"] = metadata
    template["spec"] = spec
    return template


def workload_object(kind: str, template: dict[str, Any]) -> dict[str, Any]:
    api_version, path = KINDS[kind]
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    if not path:
        return {**obj, **template}
    obj["metadata"] = {"name": "generated", "namespace": "apps"}
    holder = obj
    for key in path.split(".")[:-1]:
        holder = holder.setdefault(key, {})
    holder["template"] = template
    if kind == "CronJob":
        obj["spec"]["schedule"] = "@hourly"
    if api_version == "apps/v1":
        obj["spec"]["selector"] = {"matchLabels": {"app": "generated"}}
    if kind == "StatefulSet":
        obj["spec"]["serviceName"] = "generated"
    return obj


manifests = st.tuples(
    st.lists(st.tuples(st.sampled_from(sorted(KINDS)), templates()), min_size=1, max_size=2),
    st.sampled_from([YamlStyle(2, 0), YamlStyle(2, 2), YamlStyle(4, 2)]),
)


def manifest_text(objects: list[tuple[str, dict]], style: YamlStyle) -> str:
    documents = [
        Document("gen.yaml", index, workload_object(kind, copy.deepcopy(template)), style)
        for index, (kind, template) in enumerate(objects, start=1)
    ]
    return yaml_text(documents)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(manifests)
def test_inject_is_the_webhooks_patch_and_uninject_undoes_it(
    injector: Injector, manifest: tuple
) -> None:
    objects, style = manifest
    original = manifest_text(objects, style)
    documents, workloads = documents_and_workloads(original)
    expected = [
        webhook_template(injector, template_of(w), namespace_for(w, None)) for w in workloads
    ]
    for workload in workloads:
        inject(injector, workload, namespace_for(workload, None))
    assert [to_plain(template_of(w)) for w in workloads] == expected
    assert_valid(documents, workloads)

    injected = yaml_text(documents)
    documents, workloads = documents_and_workloads(injected)
    again = [inject(injector, w, namespace_for(w, None)).decision for w in workloads]
    assert "injected" not in again
    for workload in workloads:
        uninject(workload, KEYS)
    assert yaml_text(documents) == original
