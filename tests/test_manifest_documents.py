"""Reading and writing manifests, and finding the Pods and Pod templates in them."""

import io
from pathlib import Path

import orjson
import pytest

from injector.errors import ManifestError
from injector.manifests.documents import Document, Manifest, YamlStyle
from injector.manifests.read import guess_style, parse_manifest, read_manifests, split_documents
from injector.manifests.workloads import find_workloads, misplaced_settings
from injector.manifests.write import json_stream, to_plain, yaml_stream

MANIFESTS = Path(__file__).parent / "data" / "manifests"
REAL_WORLD = Path(__file__).parent / "data" / "real-world"

CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"


def parse(source: str, text: str) -> list[Document]:
    return parse_manifest(source, text.encode()).documents


def test_a_stream_gives_each_mapping_numbered_by_its_place_in_the_file() -> None:
    text = f"{CONFIG_MAP}---\n---\n# only a comment\n---\n{CONFIG_MAP}"
    documents = parse("app.yaml", text)
    assert [d.index for d in documents] == [1, 4]
    assert [d.where("spec") for d in documents] == [
        "app.yaml document 1, spec",
        "app.yaml document 4, spec",
    ]
    assert [d.text for d in documents] == [CONFIG_MAP, f"---\n{CONFIG_MAP}"]
    assert [d.first_line for d in documents] == [0, 7]


@pytest.mark.parametrize(
    "text",
    [
        f"{CONFIG_MAP}---\n{CONFIG_MAP}---\n",
        f"---\n{CONFIG_MAP}---\n{CONFIG_MAP}",
        f"# head\n---\n{CONFIG_MAP}...\n# after the end\n---\n{CONFIG_MAP}",
        f"{CONFIG_MAP}...\n%YAML 1.2\n---\n{CONFIG_MAP}",
        f"{CONFIG_MAP}...\n{CONFIG_MAP}",
        f"--- # a comment\n{CONFIG_MAP}--- {{kind: Secret}}\n",
        "data:\n  script: |\n    --- not a marker, indented\n---\nkind: Secret\n",
        f"{CONFIG_MAP}".replace("\n", "\r\n") + "---\r\n" + CONFIG_MAP.replace("\n", "\r\n"),
    ],
)
def test_a_stream_is_cut_into_its_documents_and_their_text_is_the_stream(text: str) -> None:
    pieces = split_documents(text)
    assert "".join(piece for piece, _ in pieces) == text
    manifest = parse_manifest("s.yaml", text.encode())
    assert manifest.output_text() == text
    assert len(manifest.documents) == 2
    for document in manifest.documents:
        assert to_plain(parse("one.yaml", document.text)[0].data) == to_plain(document.data)


@pytest.mark.parametrize("text", ["", "\n", "# nothing yet\n", "---\n---\n"])
def test_text_without_documents_gives_none_and_is_kept(text: str) -> None:
    manifest = parse_manifest("empty.yaml", text.encode())
    assert manifest.documents == []
    assert manifest.output_text() == text


def test_malformed_yaml_names_the_file_the_document_and_the_line() -> None:
    with pytest.raises(ManifestError) as error:
        parse("app.yaml", (MANIFESTS / "malformed.yaml").read_text())
    message = str(error.value)
    assert message == (
        "app.yaml document 2: not valid YAML: expected ',' or ']', but got '<stream end>' "
        "at line 11, column 1, while parsing a flow sequence at line 10, column 11"
    )


def test_a_duplicate_key_is_malformed_yaml() -> None:
    with pytest.raises(ManifestError, match=r"^x.yaml document 1: not valid YAML: .*line 3"):
        parse("x.yaml", "kind: Pod\nmetadata: {}\nkind: Service\n")


@pytest.mark.parametrize(
    ("text", "found"),
    [("- a\n- b\n", "a list"), ("just words\n", "a string"), ("42\n", "a number")],
)
def test_a_document_that_is_not_a_mapping_is_an_error(text: str, found: str) -> None:
    with pytest.raises(ManifestError) as error:
        parse("x.yaml", f"{CONFIG_MAP}---\n{text}")
    assert str(error.value) == (
        f"x.yaml document 2: expected a Kubernetes object (a mapping), found {found}"
    )


def test_json_is_read_as_one_document() -> None:
    text = (MANIFESTS / "pod.json").read_text()
    [document] = parse("pod.json", text)
    assert document.data["metadata"] == {"name": "api", "namespace": "shop"}
    assert (document.is_json, document.text) == (True, text)


def test_json_that_is_not_an_object_or_not_json_at_all_is_an_error() -> None:
    with pytest.raises(ManifestError, match=r"^pods.json document 1: .*found a list$"):
        parse("pods.json", "[]")
    with pytest.raises(ManifestError, match=r"^pod.json document 1: not valid YAML: .*line 2"):
        parse("pod.json", '{"kind": "Pod",\n "spec": {}')


def test_a_flow_style_yaml_document_is_read_as_yaml() -> None:
    [document] = parse("pod.yaml", "{kind: Pod, metadata: {name: p}}  # flow\n")
    assert document.data == {"kind": "Pod", "metadata": {"name": "p"}}
    assert not document.is_json


def test_stdin_and_files_are_read_in_the_order_given(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(CONFIG_MAP)
    stdin = io.BytesIO(b'{"apiVersion": "v1", "kind": "Namespace"}')
    manifests = read_manifests([str(path), "-"], stdin=stdin)
    assert [(m.source, m.documents[0].data["kind"]) for m in manifests] == [
        (str(path), "ConfigMap"),
        ("stdin", "Namespace"),
    ]


def tree(root: Path) -> None:
    (root / "b.yaml").write_text(CONFIG_MAP)
    (root / "a.json").write_text('{"kind": "Namespace"}')
    (root / "c.yml").write_text("kind: Secret\n")
    (root / "notes.txt").write_text("kind: Ignored\n")
    (root / "ab").mkdir()
    (root / "ab" / "z.yaml").write_text("kind: Service\n")
    (root / "ab" / "deeper").mkdir()
    (root / "ab" / "deeper" / "d.json").write_text('{"kind": "Role"}')
    (root / "nested.yaml").mkdir()
    (root / "nested.yaml" / "n.yaml").write_text("kind: Job\n")


def kinds(manifests: list[Manifest]) -> list[str]:
    return [d.data["kind"] for m in manifests for d in m.documents]


def test_a_directory_gives_its_manifests_sorted_by_name(tmp_path: Path) -> None:
    tree(tmp_path)
    assert kinds(read_manifests([str(tmp_path)])) == ["Namespace", "ConfigMap", "Secret"]


def test_recursively_its_subdirectories_are_walked_in_lexical_order(tmp_path: Path) -> None:
    tree(tmp_path)
    assert kinds(read_manifests([str(tmp_path)], recursive=True)) == [
        "Namespace",
        "Role",
        "Service",
        "ConfigMap",
        "Secret",
        "Job",
    ]


def test_a_file_named_is_read_whatever_its_suffix(tmp_path: Path) -> None:
    tree(tmp_path)
    assert kinds(read_manifests([str(tmp_path / "notes.txt")])) == ["Ignored"]


def test_unreadable_input_is_an_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ManifestError, match=r"missing.yaml: cannot be read: No such file"):
        read_manifests([str(missing)])
    with pytest.raises(ManifestError, match=r"^stdin: not UTF-8 text$"):
        read_manifests(["-"], stdin=io.BytesIO(b"kind: \xff\n"))


@pytest.mark.parametrize(
    ("text", "style"),
    [
        ("spec:\n  containers:\n  - name: a\n", YamlStyle(2, 0)),
        ("spec:\n  containers:\n    - name: a\n", YamlStyle(2, 2)),
        ("# c\nspec:\n    containers:\n        -   name: a\n", YamlStyle(4, 4)),
        ("metadata:\n  name: a\n", YamlStyle(2, 0)),
        ("kind: Pod\n", YamlStyle()),
        ("# chart\n---\n# Source: web.yaml\nspec:\n    a: 1\n", YamlStyle(4, 0)),
        ("spec:\r\n   containers:\r\n   - name: a\r\n", YamlStyle(3, 0)),
    ],
)
def test_the_indentation_of_a_document_is_recognised(text: str, style: YamlStyle) -> None:
    assert guess_style(text) == style


@pytest.mark.parametrize("name", ["mixed.yaml", "denied.yaml", "pod.json"])
def test_reading_and_writing_a_file_gives_it_back_as_it_was(name: str) -> None:
    content = (MANIFESTS / name).read_bytes()
    assert yaml_stream([parse_manifest(name, content)]).encode() == content


def test_a_byte_order_mark_is_kept_at_the_start_of_the_stream() -> None:
    content = b"\xef\xbb\xbf" + CONFIG_MAP.encode()
    manifests = [parse_manifest("a.yaml", content), parse_manifest("b.yaml", content)]
    assert yaml_stream(manifests).encode() == content + b"---\n" + CONFIG_MAP.encode()


@pytest.mark.parametrize(
    ("first", "second", "joined"),
    [
        (CONFIG_MAP, CONFIG_MAP, f"{CONFIG_MAP}---\n{CONFIG_MAP}"),
        (CONFIG_MAP.rstrip("\n"), CONFIG_MAP, f"{CONFIG_MAP}---\n{CONFIG_MAP}"),
        (CONFIG_MAP, f"---\n{CONFIG_MAP}", f"{CONFIG_MAP}---\n{CONFIG_MAP}"),
        (f"{CONFIG_MAP}---\n", f"---\n{CONFIG_MAP}", f"{CONFIG_MAP}---\n---\n{CONFIG_MAP}"),
    ],
)
def test_files_are_joined_into_one_stream(first: str, second: str, joined: str) -> None:
    manifests = [parse_manifest("a", first.encode()), parse_manifest("b", second.encode())]
    assert yaml_stream(manifests) == joined
    assert len(parse_manifest("joined", joined.encode()).documents) == 2


def test_json_output_is_the_object_or_a_list_of_them() -> None:
    documents = parse("x.yaml", f"{CONFIG_MAP}---\nkind: Secret\n")
    assert orjson.loads(json_stream(documents[:1]))["kind"] == "ConfigMap"
    assert orjson.loads(json_stream(documents)) == {
        "apiVersion": "v1",
        "kind": "List",
        "items": [to_plain(d.data) for d in documents],
    }
    assert orjson.loads(json_stream([])) == {"apiVersion": "v1", "kind": "List", "items": []}


def test_values_as_yaml_types_them_become_plain_json() -> None:
    [document] = parse(
        "x.yaml", "a: &yes true\nb: *yes\nc: 1.50\nd: 0x1F\ne: 2024-05-01\nf: 'quoted'\n"
    )
    assert to_plain(document.data) == {
        "a": True,
        "b": True,
        "c": 1.5,
        "d": 31,
        "e": "2024-05-01",
        "f": "quoted",
    }


WORKLOADS = [
    ("v1", "Pod", ""),
    ("v1", "ReplicationController", "spec.template"),
    ("apps/v1", "Deployment", "spec.template"),
    ("apps/v1", "StatefulSet", "spec.template"),
    ("apps/v1", "DaemonSet", "spec.template"),
    ("apps/v1", "ReplicaSet", "spec.template"),
    ("batch/v1", "Job", "spec.template"),
    ("batch/v1", "CronJob", "spec.jobTemplate.spec.template"),
    ("apps.openshift.io/v1", "DeploymentConfig", "spec.template"),
    ("argoproj.io/v1alpha1", "Rollout", "spec.template"),
]


def with_template(api_version: str, kind: str, template_path: str, template: dict) -> dict:
    obj: dict = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "w"}}
    if not template_path:
        return {**obj, **template}
    holder = obj
    for key in template_path.split(".")[:-1]:
        holder = holder.setdefault(key, {})
    holder["template"] = template
    return obj


def json_document(obj: dict) -> Document:
    [document] = parse("w.json", orjson.dumps(obj).decode())
    return document


@pytest.mark.parametrize(("api_version", "kind", "template_path"), WORKLOADS)
def test_each_workload_kind_has_its_pod_template_found(
    api_version: str, kind: str, template_path: str
) -> None:
    template = {
        "metadata": {"name": "w", "labels": {"app": "w"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }
    findings = find_workloads(
        json_document(with_template(api_version, kind, template_path, template))
    )
    [workload] = findings.workloads
    assert findings.notes == []
    assert (workload.kind, workload.name, workload.template_path) == (kind, "w", template_path)
    assert workload.pod() == {"apiVersion": "v1", "kind": "Pod", **template}
    assert workload.field("metadata") == (
        f"{template_path}.metadata" if template_path else "metadata"
    )


def test_lists_are_walked_and_their_items_named() -> None:
    text = (MANIFESTS / "mixed.yaml").read_text()
    workloads = [w for d in parse("mixed.yaml", text) for w in find_workloads(d).workloads]
    assert [w.describe() for w in workloads] == [
        "mixed.yaml document 1: Deployment/web",
        "mixed.yaml document 4, items[0]: Pod/debug",
        "mixed.yaml document 4, items[1]: StatefulSet/db",
        "mixed.yaml document 5: DaemonSet/node-agent",
        "mixed.yaml document 6: Job/import",
        "mixed.yaml document 7: CronJob/report",
        "mixed.yaml document 8: ReplicaSet/legacy-web",
        "mixed.yaml document 9: ReplicationController/older-web",
    ]
    assert [w.namespace for w in workloads] == ["shop"] * 3 + ["monitoring"] + ["shop"] * 4


def test_a_list_in_a_list_is_walked_too() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "job-"}, "spec": {}}
    inner = {"apiVersion": "v1", "kind": "List", "items": [pod]}
    outer = {"apiVersion": "v1", "kind": "List", "items": [{"kind": "Secret"}, inner]}
    [workload] = find_workloads(json_document(outer)).workloads
    assert workload.describe() == "w.json document 1, items[1].items[0]: Pod/job-"
    assert workload.pod()["metadata"] == {"generateName": "job-"}


def test_null_items_of_a_list_are_skipped_with_a_note() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}
    findings = find_workloads(json_document({"kind": "List", "items": [None, pod, None]}))
    assert [w.describe() for w in findings.workloads] == ["w.json document 1, items[1]: Pod/p"]
    assert findings.notes == [
        "w.json document 1, items[0]: skipped: the item is null",
        "w.json document 1, items[2]: skipped: the item is null",
    ]


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "batch.example.com/v1", "kind": "Job", "spec": {"tasks": []}},
        {"apiVersion": "v1", "kind": "Service", "spec": {}},
        {"apiVersion": "example.com/v1", "kind": "Widget"},
        {"metadata": {"name": "no-kind"}},
        {"apiVersion": "v1", "kind": "List"},
    ],
)
def test_other_kinds_are_not_workloads(obj: dict) -> None:
    findings = find_workloads(json_document(obj))
    assert (findings.workloads, findings.notes) == ([], [])


POD_SPEC = {"containers": [{"name": "app", "image": "app:1"}]}


@pytest.mark.parametrize(
    ("obj", "note"),
    [
        (
            {"apiVersion": "apps/v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": POD_SPEC},
            "Pod/p: not injected: a Pod's apiVersion is v1, not apps/v1",
        ),
        (
            {"kind": "Pod", "metadata": {"name": "p"}, "spec": POD_SPEC},
            "Pod/p: not injected: it has no apiVersion (a Pod's is v1)",
        ),
        (
            {"apiVersion": "extensions/v1beta1", "kind": "Deployment", "metadata": {"name": "d"}},
            "Deployment/d: not injected: a Deployment's apiVersion is apps/v1, "
            "not extensions/v1beta1",
        ),
        (
            {
                "apiVersion": "apps.kruise.io/v1alpha1",
                "kind": "CloneSet",
                "metadata": {"name": "c"},
                "spec": {"template": {"spec": POD_SPEC}},
            },
            "CloneSet/c: not injected: it holds a Pod template at spec.template, but the "
            "injector does not know the kind CloneSet (apps.kruise.io/v1alpha1); the webhook "
            "still reviews the Pods it creates",
        ),
        (
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Rollout",
                "metadata": {"name": "r"},
                "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment"}},
            },
            "Rollout/r: not injected: its Pods come from the workload that spec.workloadRef "
            "names, whose own Pod template is injected there",
        ),
    ],
)
def test_objects_the_webhook_would_see_pods_of_are_noted_when_not_injected(
    obj: dict, note: str
) -> None:
    findings = find_workloads(json_document(obj))
    assert findings.workloads == []
    assert findings.notes == [f"w.json document 1: {note}"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {template: [a]}\n",
            "w.yaml document 1: Deployment/web: spec.template must be a mapping, not a list",
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n",
            "w.yaml document 1: Deployment/web: spec.template is missing",
        ),
        (
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: r}\nspec:\n  jobTemplate: x\n",
            "w.yaml document 1: CronJob/r: spec.jobTemplate must be a mapping, not a string",
        ),
        (
            "apiVersion: v1\nkind: List\nitems: {}\n",
            "w.yaml document 1, items must be a list, not a mapping",
        ),
        (
            "apiVersion: v1\nkind: List\nitems: [{kind: Secret}, 7]\n",
            "w.yaml document 1, items[1] must be a mapping, not a number",
        ),
    ],
)
def test_a_workload_without_a_usable_template_is_an_error(text: str, message: str) -> None:
    [document] = parse("w.yaml", text)
    with pytest.raises(ManifestError) as error:
        find_workloads(document)
    assert str(error.value) == message


def test_settings_on_the_workloads_own_metadata_are_named_with_where_they_belong() -> None:
    [document] = parse("s.yaml", (REAL_WORLD / "settings-on-workload.yaml").read_text())
    [workload] = find_workloads(document).workloads
    assert misplaced_settings(workload, "injector.dev") == [
        "annotations injector.dev/inject, injector.dev/exclude-outbound-ports are on the "
        "Deployment's own metadata, where the injector does not read them: they belong under "
        "spec.template.metadata.annotations"
    ]


@pytest.mark.parametrize(("api_version", "kind", "template_path"), WORKLOADS[1:])
def test_settings_and_labels_on_any_workloads_own_metadata_are_named(
    api_version: str, kind: str, template_path: str
) -> None:
    obj = with_template(api_version, kind, template_path, {"spec": POD_SPEC})
    obj["metadata"]["labels"] = {"app": "w", "mesh.example/inject": "false"}
    obj["metadata"]["annotations"] = {"mesh.example/proxy-cpu-limit": "1", "team": "a"}
    if kind == "CronJob":
        obj["spec"]["jobTemplate"]["metadata"] = {"labels": {"mesh.example/inject": "true"}}
    [workload] = find_workloads(json_document(obj)).workloads
    own = f"the {kind}'s own metadata"
    expected = [
        f"annotation mesh.example/proxy-cpu-limit is on {own}, where the injector does not "
        f"read it: it belongs under {template_path}.metadata.annotations",
        f"label mesh.example/inject is on {own}, where the injector does not read it: "
        f"it belongs under {template_path}.metadata.labels",
    ]
    if kind == "CronJob":
        expected.append(
            "label mesh.example/inject is on spec.jobTemplate.metadata, where the injector "
            f"does not read it: it belongs under {template_path}.metadata.labels"
        )
    assert misplaced_settings(workload, "mesh.example") == expected
    assert misplaced_settings(workload, "injector.dev") == []


def test_a_pod_has_no_misplaced_settings() -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {}}}
    obj["metadata"]["annotations"] = {"injector.dev/inject": "false"}
    obj["spec"] = POD_SPEC
    [workload] = find_workloads(json_document(obj)).workloads
    assert misplaced_settings(workload, "injector.dev") == []
