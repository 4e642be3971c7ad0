"""JSON Patch building: add-only, arrays and objects created once, RFC 6901 escaping."""

import jsonpatch

from injector.kube.patch import add_to_array, add_to_object, escape


def test_escape_replaces_tilde_before_slash() -> None:
    assert escape("a/b") == "a~1b"
    assert escape("a~b") == "a~0b"
    assert escape("~/") == "~0~1"
    assert escape("~1") == "~01"


def test_escaped_keys_round_trip_through_a_real_json_patch() -> None:
    ops: list = []
    keys = {"example.com/a": "1", "odd~key": "2", "~1/~0": "3"}
    add_to_object(ops, "/metadata/annotations", {"x": "y"}, keys)
    result = jsonpatch.apply_patch({"metadata": {"annotations": {"x": "y"}}}, ops)
    assert result["metadata"]["annotations"] == {"x": "y", **keys}


def test_absent_array_is_created_once_with_every_item_in_order() -> None:
    ops: list = []
    add_to_array(ops, "/spec/initContainers", None, leading=["a", "b"], trailing=["z"])
    assert ops == [{"op": "add", "path": "/spec/initContainers", "value": ["a", "b", "z"]}]


def test_existing_array_gets_leading_items_first_and_trailing_items_last() -> None:
    ops: list = []
    add_to_array(ops, "/list", ["u1", "u2"], leading=["a", "b"], trailing=["y", "z"])
    assert jsonpatch.apply_patch({"list": ["u1", "u2"]}, ops) == {
        "list": ["a", "b", "u1", "u2", "y", "z"]
    }


def test_nothing_to_add_adds_no_operation() -> None:
    ops: list = []
    add_to_array(ops, "/list", None)
    add_to_object(ops, "/map", None, {})
    assert ops == []


def test_absent_object_is_created_once() -> None:
    ops: list = []
    add_to_object(ops, "/metadata/labels", None, {"a": "1", "b/c": "2"})
    assert ops == [{"op": "add", "path": "/metadata/labels", "value": {"a": "1", "b/c": "2"}}]
