"""Injecting, uninjecting and explaining workloads: the webhook's patch written into the text,
and its exact undoing."""

import copy
import io
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml as pyyaml
from admission_data import apply_patch, decode_patch, respond
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes_schema import validate_object, validate_pod_rules
from lines import lines

from injector.core.engine import Injector
from injector.core.keys import Keys
from injector.errors import ManifestError
from injector.kube.yaml import yaml_writer
from injector.manifests.documents import Changed, Document, Manifest
from injector.manifests.explain import explanation, explanation_json
from injector.manifests.inject import evaluate, inject_document, injected, namespace_for
from injector.manifests.read import parse_manifest
from injector.manifests.uninject import uninject, uninject_document
from injector.manifests.workloads import Workload, find_workloads
from injector.manifests.write import to_plain, yaml_stream

MANIFESTS = Path(__file__).parent / "data" / "manifests"
REAL_WORLD = Path(__file__).parent / "data" / "real-world"
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


def template_of(workload: Workload, data: dict | None = None) -> dict[str, Any]:
    holder = workload.holder_in(data if data is not None else workload.document.output_data)
    return {key: holder[key] for key in ("metadata", "spec") if key in holder}


def manifest_of(text: str) -> Manifest:
    return parse_manifest("in.yaml", text.encode())


def workloads_of(manifest: Manifest) -> list[Workload]:
    return [w for d in manifest.documents for w in find_workloads(d).workloads]


def inject_manifest(
    injector: Injector, manifest: Manifest, namespace: str | None = None
) -> list[str]:
    """Injects every workload of the manifest, as `inject` does; the documents' warnings."""
    warnings = []
    for document in manifest.documents:
        outcomes = [
            (w, evaluate(injector, w, namespace_for(w, namespace)))
            for w in find_workloads(document).workloads
        ]
        warnings += inject_document(document, outcomes, KEYS)
    return warnings


def inject_text(injector: Injector, text: str) -> str:
    manifest = manifest_of(text)
    assert inject_manifest(injector, manifest) == []
    return yaml_stream([manifest])


def uninject_manifest(manifest: Manifest) -> list[bool]:
    """Uninjects every workload of the manifest, as `uninject` does; which were."""
    results = []
    for document in manifest.documents:
        done, rewrite = uninject_document(document, KEYS)
        results += done
        if rewrite is not None:
            assert rewrite.written_anew is None
            document.changed = Changed(rewrite.data, rewrite.text)
    return results


def uninject_text(text: str) -> str:
    manifest = manifest_of(text)
    uninject_manifest(manifest)
    return yaml_stream([manifest])


def assert_valid(documents: list[Document], workloads: list[Workload]) -> None:
    for document in documents:
        data = to_plain(document.output_data)
        for obj in data["items"] if data.get("kind") == "List" else [data]:
            if not obj["apiVersion"].endswith(("example.com/v1", "openshift.io/v1", "io/v1alpha1")):
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
    originals = workloads_of(manifest_of(MIXED))
    manifest = manifest_of(injected_mixed)
    workloads = workloads_of(manifest)
    assert len(workloads) == len(originals) == 8
    for original, result in zip(originals, workloads, strict=True):
        namespace = namespace_for(original, None)
        expected = webhook_template(injector, template_of(original), namespace)
        assert to_plain(template_of(result)) == expected
    assert_valid(manifest.documents, workloads)


def test_only_the_text_of_what_is_added_changes(injected_mixed: str) -> None:
    before = manifest_of(MIXED).documents
    after = manifest_of(injected_mixed).documents
    changed = [b.index for b, a in zip(before, after, strict=True) if b.text != a.text]
    assert changed == [1, 4, 7, 8, 9]  # the Service, ConfigMap, DaemonSet, Job, CR: as written
    for old, new in zip(before, after, strict=True):
        assert_lines_kept(old.text, new.text)


def assert_lines_kept(old: str, new: str) -> None:
    """Every line of `old` is in `new`, in order, with only added lines between them."""
    new_lines = lines(new)
    position = 0
    for line in lines(old):
        assert line in new_lines[position:]
        position = new_lines.index(line, position) + 1


def test_a_second_inject_changes_nothing(injector: Injector, injected_mixed: str) -> None:
    manifest = manifest_of(injected_mixed)
    outcomes = [evaluate(injector, w, namespace_for(w, None)) for w in workloads_of(manifest)]
    assert {outcome.reason for outcome in outcomes} == {
        "already-injected",
        "host-network",
        "opted-out",
    }
    assert inject_manifest(injector, manifest) == []
    assert yaml_stream([manifest]) == injected_mixed


def test_uninject_gives_back_the_file_byte_for_byte(injected_mixed: str) -> None:
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
    manifest = manifest_of(text)
    [warning] = inject_manifest(injector, manifest)
    assert warning == (
        "written anew, as its text could not be edited in place (spec.template.metadata.labels "
        "is shared through a YAML anchor): its layout may change, and uninject will not give "
        "back its original text"
    )
    data = to_plain(manifest.documents[0].output_data)
    assert data["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert data["spec"]["template"]["metadata"]["labels"] == {
        "app": "web",
        "injector.dev/injected": "true",
    }
    back = manifest_of(yaml_stream([manifest]))
    done, rewrite = uninject_document(back.documents[0], KEYS)
    assert done == [True]
    assert rewrite is not None
    assert to_plain(rewrite.data) == to_plain(manifest_of(text).documents[0].data)


def test_the_namespace_is_the_one_given_else_the_objects_else_default() -> None:
    deployment = workloads_of(manifest_of(MIXED))[0]
    assert namespace_for(deployment, None) == "shop"
    assert namespace_for(deployment, "kube-system") == "kube-system"
    pod_text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a}]}\n"
    [pod] = workloads_of(manifest_of(pod_text))
    assert namespace_for(pod, None) == "default"


def test_in_an_excluded_namespace_nothing_is_injected(injector: Injector) -> None:
    manifest = manifest_of(MIXED)
    outcomes = [evaluate(injector, w, "kube-system") for w in workloads_of(manifest)]
    assert {o.reason for o in outcomes} == {"excluded-namespace"}
    assert inject_manifest(injector, manifest, "kube-system") == []
    assert yaml_stream([manifest]) == MIXED


def test_an_invalid_override_is_denied_with_the_webhooks_message(injector: Injector) -> None:
    [workload] = workloads_of(manifest_of((MANIFESTS / "denied.yaml").read_text()))
    outcome = evaluate(injector, workload, "default")
    assert (outcome.decision, outcome.reason) == ("denied", "invalid-annotation")
    assert outcome.detail == (
        "annotation injector.dev/log-level='loud' is invalid: expected one of trace, debug, "
        "info, warning, error, critical, off"
    )


def test_uninject_removes_only_what_was_injected(injected_mixed: str) -> None:
    manifest = manifest_of(injected_mixed)
    workloads = workloads_of(manifest)
    deployment, cron_job = workloads[0], workloads[5]
    data = {id(w.document): copy.deepcopy(w.document.data) for w in workloads}
    holder = deployment.holder_in(data[id(deployment.document)])
    holder["spec"]["containers"].append({"name": "added-later", "image": "tools:1"})
    holder["spec"]["volumes"].append({"name": "added-later", "emptyDir": {}})
    holder = cron_job.holder_in(data[id(cron_job.document)])
    holder["spec"]["volumes"].insert(0, {"name": "scratch", "emptyDir": {}})  # a created list
    holder["metadata"]["labels"]["team"] = "reports"  # in another one
    for workload in workloads:
        uninject(workload, KEYS, data[id(workload.document)])
    deployment_spec = deployment.holder_in(data[id(deployment.document)])["spec"]
    assert [c["name"] for c in deployment_spec["containers"]] == ["app", "added-later"]
    assert [v["name"] for v in deployment_spec["volumes"]] == ["cache", "added-later"]
    cron = cron_job.holder_in(data[id(cron_job.document)])
    assert [v["name"] for v in cron["spec"]["volumes"]] == ["scratch"]
    assert "initContainers" not in cron["spec"]
    assert cron["metadata"] == {"labels": {"team": "reports"}}


def test_uninject_cuts_what_was_injected_out_of_text_edited_since(
    injector: Injector, injected_mixed: str
) -> None:
    edited = injected_mixed.replace(
        "          emptyDir: {}\n", "          emptyDir: {}  # scratch space\n", 1
    ).replace("  replicas: 2\n", "  replicas: 3  # scaled up\n", 1)
    expected = MIXED.replace("  replicas: 2\n", "  replicas: 3  # scaled up\n", 1).replace(
        "          emptyDir: {}\n", "          emptyDir: {}  # scratch space\n", 1
    )
    assert uninject_text(edited) == expected


def test_uninject_leaves_a_workload_without_status_alone() -> None:
    manifest = manifest_of(MIXED)
    assert not any(uninject_manifest(manifest))
    assert yaml_stream([manifest]) == MIXED


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
    manifest = parse_manifest("j.json", orjson.dumps(obj))
    with pytest.raises(ManifestError) as error:
        uninject_document(manifest.documents[0], KEYS)
    field = "spec.template.metadata.annotations[injector.dev/status]"
    assert str(error.value) == f"j.json document 1: Job/j: {field}{problem}"


def test_explain_says_what_decided_and_shows_what_is_added(injector: Injector) -> None:
    deployment = workloads_of(manifest_of(MIXED))[0]
    outcome = evaluate(injector, deployment, "shop")
    [outcome_note] = outcome.notes
    text = explanation(deployment, "shop", outcome, [])
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
    assert "    --- in.yaml document 1 (as written)" in explained
    assert "    +++ in.yaml document 1 (injected)" in explained
    assert "    +      initContainers:" in explained
    assert "    +        - name: mesh-proxy" in explained
    assert "    +          -A MESH_OUTPUT -m owner --uid-owner 1337 -j RETURN" in explained
    removed = [line for line in explained if line.startswith("    -") and line[5:7] != "--"]
    assert removed == []  # injection only adds
    assert deployment.document.changed is None  # explaining changes nothing


def test_explain_of_a_skipped_workload_names_the_rule(injector: Injector) -> None:
    job = workloads_of(manifest_of(MIXED))[4]
    assert explanation(job, "shop", evaluate(injector, job, "shop"), ["look here"]) == (
        "in.yaml document 6: Job/import\n"
        "  namespace: shop\n"
        "  decision: skipped\n"
        "  reason: opted-out: annotation injector.dev/inject=false\n"
        "  warning: look here\n"
        "  changes: none\n"
    )


def test_explain_as_json_gives_the_decision_and_the_webhooks_patch(injector: Injector) -> None:
    deployment = workloads_of(manifest_of(MIXED))[0]
    outcome = evaluate(injector, deployment, "shop")
    report = explanation_json(deployment, "shop", outcome, ["w"])
    assert {k: v for k, v in report.items() if k != "patch"} == {
        "source": "in.yaml",
        "document": 1,
        "item": "",
        "kind": "Deployment",
        "name": "web",
        "templatePath": "spec.template",
        "namespace": "shop",
        "decision": "injected",
        "reason": "injected",
        "detail": "the default policy is enabled",
        "overrides": {"injector.dev/log-level": "debug"},
        "warnings": ["w"],
        "notes": list(outcome.notes),
    }
    assert report["notes"]  # what Pod Security needs, as explain's text says
    pod = {"apiVersion": "v1", "kind": "Pod", **to_plain(template_of(deployment))}
    patched = apply_patch(pod, report["patch"])
    expected = webhook_template(injector, template_of(deployment), "shop")
    assert {key: patched[key] for key in ("metadata", "spec")} == expected


def test_injected_strings_a_yaml_1_1_reader_would_misread_are_quoted(injector: Injector) -> None:
    text = (REAL_WORLD / "yaml11-strings.yaml").read_text()
    result = inject_text(injector, text)
    misread = re.compile(r"(?:: |- )(?:off|on|y|n|yes|no|null|~)[ \t]*$", re.MULTILINE)
    assert misread.search(text) is None
    assert misread.search(result) is None
    assert '    kubectl.kubernetes.io/default-container: "on"\n' in result
    manifest = manifest_of(result)
    as_kubectl_reads = list(pyyaml.safe_load_all(result))
    assert as_kubectl_reads == [to_plain(d.data) for d in manifest.documents]
    assert uninject_text(result) == text


KINDS_BEYOND_KUBERNETES = [
    ("apps.openshift.io/v1", "DeploymentConfig"),
    ("argoproj.io/v1alpha1", "Rollout"),
]


@pytest.mark.parametrize(("api_version", "kind"), KINDS_BEYOND_KUBERNETES)
def test_other_objects_with_a_pod_template_are_injected_like_deployments(
    injector: Injector, api_version: str, kind: str
) -> None:
    text = (
        f"apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: app\n  namespace: shop\n"
        "spec:\n  replicas: 2\n  template:\n    metadata:\n      labels: {app: app}\n"
        "    spec:\n      containers:\n      - name: app\n        image: app:1\n"
    )
    original = workloads_of(manifest_of(text))[0]
    result = inject_text(injector, text)
    [workload] = workloads_of(manifest_of(result))
    expected = webhook_template(injector, template_of(original), "shop")
    assert to_plain(template_of(workload)) == expected
    assert uninject_text(result) == text


@pytest.mark.parametrize(
    ("template", "nulls", "after_uninject"),
    [
        (
            "    metadata:\n      annotations: null\n",
            "spec.template.metadata.annotations",
            "    metadata: {}\n",
        ),
        ("    metadata:\n      labels: ~\n", "spec.template.metadata.labels", "    metadata: {}\n"),
        ("    metadata:\n", "spec.template.metadata", ""),
    ],
)
def test_an_explicit_null_that_injection_fills_is_named_as_not_given_back(
    injector: Injector, template: str, nulls: str, after_uninject: str
) -> None:
    text = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n"
        "  template:\n{}    spec:\n      containers:\n      - name: app\n"
    )
    manifest = manifest_of(text.format(template))
    workload = workloads_of(manifest)[0]
    expected = webhook_template(injector, template_of(workload), "default")
    assert inject_manifest(injector, manifest) == [
        f"uninject will not give back its original text: {nulls} was written as null, "
        "and uninject removes it"
    ]
    assert to_plain(template_of(workload)) == expected
    assert uninject_text(yaml_stream([manifest])) == text.format(after_uninject)


def test_a_json_document_stays_json(injector: Injector) -> None:
    text = (MANIFESTS / "pod.json").read_text()
    manifest = parse_manifest("pod.json", text.encode())
    assert inject_manifest(injector, manifest) == []
    result = yaml_stream([manifest])
    injected_pod = orjson.loads(result)
    expected = webhook_template(injector, orjson.loads(text), "shop")
    assert {key: injected_pod[key] for key in ("metadata", "spec")} == expected
    assert '\n  "metadata": {"name": "api", "namespace": "shop", ' in result
    assert uninject_text(result) == text


def test_only_the_workload_explained_is_in_its_diff(injector: Injector) -> None:
    manifest = manifest_of(MIXED)
    document = manifest.documents[3]  # the List
    pod, stateful_set = find_workloads(document).workloads
    result = injected(document, [(pod, evaluate(injector, pod, "shop"))])
    assert to_plain(stateful_set.holder_in(result.data)) == to_plain(stateful_set.holder)
    assert result.text.count("- name: mesh-proxy\n") == 1


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


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(st.sampled_from(sorted(KINDS)), templates()), min_size=1, max_size=3),
    st.sampled_from([(2, 0), (2, 2), (4, 2), (4, 0)]),
)
def test_inject_is_the_webhooks_patch_and_uninject_undoes_it_byte_for_byte(
    injector: Injector, objects: list[tuple[str, dict]], indentation: tuple[int, int]
) -> None:
    writer = yaml_writer(mapping_indent=indentation[0], sequence_offset=indentation[1])
    out = io.StringIO()
    writer.dump_all([workload_object(kind, copy.deepcopy(t)) for kind, t in objects], out)
    original = out.getvalue()
    manifest = manifest_of(original)
    workloads = workloads_of(manifest)
    expected = [
        webhook_template(injector, template_of(w), namespace_for(w, None)) for w in workloads
    ]
    assert inject_manifest(injector, manifest) == []
    assert [to_plain(template_of(w)) for w in workloads] == expected
    assert_valid(manifest.documents, workloads)

    result = yaml_stream([manifest])
    again = manifest_of(result)
    decisions = [
        evaluate(injector, w, namespace_for(w, None)).decision for w in workloads_of(again)
    ]
    assert "injected" not in decisions
    assert uninject_text(result) == original


def test_uninject_edits_a_pod_the_webhook_injected_in_place(injector: Injector) -> None:
    """A Pod as `kubectl get -o yaml` prints it after the webhook's patch: uninject cuts out
    what the status records, and only that, without writing the document anew."""
    pod = orjson.loads((MANIFESTS / "pod.json").read_bytes())
    pod["metadata"]["labels"] = {"app": "api"}
    pod["spec"]["initContainers"] = [{"name": "setup", "image": "setup:1"}]
    injected_pod = webhook_template(injector, pod, "shop")
    out = io.StringIO()
    yaml_writer().dump({"apiVersion": "v1", "kind": "Pod", **injected_pod}, out)
    manifest = manifest_of(out.getvalue())
    assert uninject_manifest(manifest) == [True]  # no document written anew
    result = yaml_stream([manifest])
    assert to_plain(manifest_of(result).documents[0].data) == pod
    assert_lines_kept(result, out.getvalue())


def test_a_workload_injected_before_is_left_out_of_the_proof(injector: Injector) -> None:
    """inject proves that removing what it added gives back the text; a Pod in the same List
    that was injected before (which uninject would also clean) is no reason to warn."""
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "app"}]}}
    earlier = {**pod, **webhook_template(injector, pod, "default")}
    out = io.StringIO()
    yaml_writer().dump({"apiVersion": "v1", "kind": "List", "items": [earlier, pod]}, out)
    manifest = manifest_of(out.getvalue())
    assert inject_manifest(injector, manifest) == []
    assert manifest.documents[0].changed is not None
    assert uninject_manifest(manifest_of(yaml_stream([manifest]))) == [True, True]
