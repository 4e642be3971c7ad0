"""Reading and writing manifests, and finding the Pods and Pod templates in them."""

import io
from pathlib import Path

import orjson
import pytest

from injector.errors import ManifestError
from injector.manifests.documents import YamlStyle
from injector.manifests.read import guess_style, parse_documents, read_documents
from injector.manifests.workloads import find_workloads
from injector.manifests.write import to_plain, write_json, write_yaml

MANIFESTS = Path(__file__).parent / "data" / "manifests"

CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"


def yaml_text(documents: list) -> str:
    out = io.StringIO()
    write_yaml(documents, out)
    return out.getvalue()


def test_a_stream_gives_each_mapping_numbered_by_its_place_in_the_file() -> None:
    text = f"{CONFIG_MAP}---\n---\n# only a comment\n---\n{CONFIG_MAP}"
    documents = parse_documents("app.yaml", text)
    assert [d.index for d in documents] == [1, 4]
    assert [d.where("spec") for d in documents] == [
        "app.yaml document 1, spec",
        "app.yaml document 4, spec",
    ]


@pytest.mark.parametrize("text", ["", "\n", "# nothing yet\n", "---\n---\n"])
def test_text_without_documents_gives_none(text: str) -> None:
    assert parse_documents("empty.yaml", text) == []


def test_malformed_yaml_names_the_file_the_document_and_the_line() -> None:
    with pytest.raises(ManifestError) as error:
        parse_documents("app.yaml", (MANIFESTS / "malformed.yaml").read_text())
    message = str(error.value)
    assert message == (
        "app.yaml document 2: not valid YAML: expected ',' or ']', but got '<stream end>' "
        "at line 11, column 1, while parsing a flow sequence at line 10, column 11"
    )


def test_a_duplicate_key_is_malformed_yaml() -> None:
    with pytest.raises(ManifestError, match=r"^x.yaml document 1: not valid YAML: .*line 3"):
        parse_documents("x.yaml", "kind: Pod\nmetadata: {}\nkind: Service\n")


@pytest.mark.parametrize(
    ("text", "found"),
    [("- a\n- b\n", "a list"), ("just words\n", "a string"), ("42\n", "a number")],
)
def test_a_document_that_is_not_a_mapping_is_an_error(text: str, found: str) -> None:
    with pytest.raises(ManifestError) as error:
        parse_documents("x.yaml", f"{CONFIG_MAP}---\n{text}")
    assert str(error.value) == (
        f"x.yaml document 2: expected a Kubernetes object (a mapping), found {found}"
    )


def test_json_is_read_as_one_document() -> None:
    [document] = parse_documents("pod.json", (MANIFESTS / "pod.json").read_text())
    assert document.data["metadata"] == {"name": "api", "namespace": "shop"}
    assert document.style == YamlStyle()


def test_json_that_is_not_an_object_or_not_json_at_all_is_an_error() -> None:
    with pytest.raises(ManifestError, match=r"^pods.json document 1: .*found a list$"):
        parse_documents("pods.json", "[]")
    with pytest.raises(ManifestError, match=r"^pod.json document 1: not valid YAML: .*line 2"):
        parse_documents("pod.json", '{"kind": "Pod",\n "spec": {}')


def test_a_flow_style_yaml_document_is_read_as_yaml() -> None:
    [document] = parse_documents("pod.yaml", "{kind: Pod, metadata: {name: p}}  # flow\n")
    assert document.data == {"kind": "Pod", "metadata": {"name": "p"}}


def test_stdin_and_files_are_read_in_the_order_given(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(CONFIG_MAP)
    stdin = io.BytesIO(b'{"apiVersion": "v1", "kind": "Namespace"}')
    documents = read_documents([str(path), "-"], stdin)
    assert [(d.source, d.data["kind"]) for d in documents] == [
        (str(path), "ConfigMap"),
        ("stdin", "Namespace"),
    ]


def test_a_directory_gives_its_manifests_sorted_by_name(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(CONFIG_MAP)
    (tmp_path / "a.json").write_text('{"kind": "Namespace"}')
    (tmp_path / "c.yml").write_text("kind: Secret\n")
    (tmp_path / "notes.txt").write_text("kind: Ignored\n")
    (tmp_path / "nested.yaml").mkdir()
    documents = read_documents([str(tmp_path)])
    assert [d.data["kind"] for d in documents] == ["Namespace", "ConfigMap", "Secret"]


def test_unreadable_input_is_an_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ManifestError, match=r"missing.yaml: cannot be read: No such file"):
        read_documents([str(missing)])
    with pytest.raises(ManifestError, match=r"^stdin: not UTF-8 text$"):
        read_documents(["-"], io.BytesIO(b"kind: \xff\n"))


@pytest.mark.parametrize(
    ("text", "style"),
    [
        ("spec:\n  containers:\n  - name: a\n", YamlStyle(2, 0)),
        ("spec:\n  containers:\n    - name: a\n", YamlStyle(2, 2)),
        ("# c\nspec:\n    containers:\n        -   name: a\n", YamlStyle(4, 4)),
        ("metadata:\n  name: a\n", YamlStyle(2, 0)),
        ("kind: Pod\n", YamlStyle()),
        ("# chart\n---\n# Source: web.yaml\nspec:\n    a: 1\n", YamlStyle(4, 0, True)),
        ("--- # a comment\nkind: Pod\n", YamlStyle(explicit_start=True)),
    ],
)
def test_the_indentation_of_a_file_is_recognised(text: str, style: YamlStyle) -> None:
    assert guess_style(text) == style


@pytest.mark.parametrize("name", ["mixed.yaml", "denied.yaml"])
def test_reading_and_writing_a_file_gives_it_back_as_it_was(name: str) -> None:
    text = (MANIFESTS / name).read_text()
    assert yaml_text(parse_documents(name, text)) == text


def test_a_leading_document_marker_is_kept() -> None:
    text = f"---\n# Source: chart/templates/settings.yaml\n{CONFIG_MAP}---\n{CONFIG_MAP}"
    assert yaml_text(parse_documents("chart.yaml", text)) == text


def test_json_output_is_the_object_or_a_list_of_them() -> None:
    documents = parse_documents("x.yaml", f"{CONFIG_MAP}---\nkind: Secret\n")
    out = io.StringIO()
    write_json(documents[:1], out)
    assert orjson.loads(out.getvalue())["kind"] == "ConfigMap"
    out = io.StringIO()
    write_json(documents, out)
    assert orjson.loads(out.getvalue()) == {
        "apiVersion": "v1",
        "kind": "List",
        "items": [to_plain(d.data) for d in documents],
    }


def test_values_as_yaml_types_them_become_plain_json() -> None:
    [document] = parse_documents(
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


@pytest.mark.parametrize(("api_version", "kind", "template_path"), WORKLOADS)
def test_each_workload_kind_has_its_pod_template_found(
    api_version: str, kind: str, template_path: str
) -> None:
    template = {
        "metadata": {"name": "w", "labels": {"app": "w"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }
    obj = with_template(api_version, kind, template_path, template)
    [document] = parse_documents("w.json", orjson.dumps(obj).decode())
    [workload] = find_workloads(document)
    assert (workload.kind, workload.name, workload.template_path) == (kind, "w", template_path)
    assert workload.pod() == {"apiVersion": "v1", "kind": "Pod", **template}
    assert workload.field("metadata") == (
        f"{template_path}.metadata" if template_path else "metadata"
    )


def test_lists_are_walked_and_their_items_named() -> None:
    text = (MANIFESTS / "mixed.yaml").read_text()
    workloads = [w for d in parse_documents("mixed.yaml", text) for w in find_workloads(d)]
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
    [document] = parse_documents("l.json", orjson.dumps(outer).decode())
    [workload] = find_workloads(document)
    assert workload.describe() == "l.json document 1, items[1].items[0]: Pod/job-"


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "batch.example.com/v1", "kind": "Job", "spec": {"tasks": []}},
        {"apiVersion": "extensions/v1beta1", "kind": "Deployment", "spec": {}},
        {"apiVersion": "v1", "kind": "Service", "spec": {}},
        {"apiVersion": "example.com/v1", "kind": "Widget"},
        {"metadata": {"name": "no-kind"}},
        {"apiVersion": "v1", "kind": "List"},
    ],
)
def test_other_kinds_are_not_workloads(obj: dict) -> None:
    [document] = parse_documents("o.json", orjson.dumps(obj).decode())
    assert find_workloads(document) == []


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
    [document] = parse_documents("w.yaml", text)
    with pytest.raises(ManifestError) as error:
        find_workloads(document)
    assert str(error.value) == message
