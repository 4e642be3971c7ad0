"""Injecting the proxy into workloads: the webhook's patch, applied to their Pods or templates,
and written into their document's text (see `injector.manifests.edit`)."""

import copy
from collections.abc import Sequence
from typing import Any

import jsonpatch

from injector.core.engine import Injector, Outcome
from injector.core.keys import Keys
from injector.manifests.documents import Changed, Document
from injector.manifests.edit import Rewrite, rewrite
from injector.manifests.read import reread
from injector.manifests.uninject import uninject
from injector.manifests.workloads import Workload, find_workloads, set_pod
from injector.manifests.write import to_plain, with_block_strings

DEFAULT_NAMESPACE = "default"


def namespace_for(workload: Workload, given: str | None) -> str:
    """The namespace given on the command line, else the object's own, else "default"."""
    return given or workload.namespace or DEFAULT_NAMESPACE


def evaluate(injector: Injector, workload: Workload, namespace: str) -> Outcome:
    """The webhook's outcome for the Pod, asked with the JSON the API server would send."""
    return injector.evaluate(to_plain(workload.pod()), namespace)


def apply_outcome(workload: Workload, outcome: Outcome, data: dict[str, Any]) -> None:
    """Applies the outcome's patch to the workload's Pod in `data`, a copy of its document's
    object: what the webhook's patch makes of the Pod."""
    holder = workload.holder_in(data)
    # Copies, so that what the YAML shares through anchors changes only in the template.
    pod = copy.deepcopy(workload.pod(data))
    operations = [{**op, "value": with_block_strings(op["value"])} for op in outcome.operations]
    set_pod(holder, jsonpatch.apply_patch(pod, operations, in_place=True))


def injected(document: Document, outcomes: Sequence[tuple[Workload, Outcome]]) -> Rewrite:
    """The document with the injected outcomes' patches applied, and its new text."""
    data = copy.deepcopy(document.data)
    for workload, outcome in outcomes:
        if outcome.decision == "injected":
            apply_outcome(workload, outcome, data)
    return rewrite(document, data, adding=True)


def inject_document(
    document: Document, outcomes: Sequence[tuple[Workload, Outcome]], keys: Keys
) -> list[str]:
    """Injects the workloads the outcomes inject, in the document; warnings for what of its
    text could not be kept, so that `uninject` would not give it back byte for byte."""
    if not any(outcome.decision == "injected" for _, outcome in outcomes):
        return []
    result = injected(document, outcomes)
    document.changed = Changed(result.data, result.text)
    if result.written_anew is not None:
        return [
            f"written anew, as its text could not be edited in place ({result.written_anew}): "
            "its layout may change, and uninject will not give back its original text"
        ]
    # The proof: removing what was just injected gives back the text as read.
    again = reread(document, result.text)
    data = copy.deepcopy(again.data)
    injected_now = {w.item_path for w, outcome in outcomes if outcome.decision == "injected"}
    for workload in find_workloads(again).workloads:
        if workload.item_path in injected_now:
            uninject(workload, keys, data)
    if rewrite(again, data, adding=False).text == document.text:
        return []
    if result.nulls:
        why = f"{', '.join(result.nulls)} was written as null, and uninject removes it"
    else:
        why = "removing what was added does not give back its text"
    return [f"uninject will not give back its original text: {why}"]
