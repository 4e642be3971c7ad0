"""Injecting the proxy into a workload: the webhook's patch, applied to its Pod or template."""

import copy
from typing import Any

import jsonpatch

from injector.core.engine import Injector, Outcome
from injector.manifests.workloads import Workload
from injector.manifests.write import to_plain, with_block_strings

DEFAULT_NAMESPACE = "default"


def namespace_for(workload: Workload, given: str | None) -> str:
    """The namespace given on the command line, else the object's own, else "default"."""
    return given or workload.namespace or DEFAULT_NAMESPACE


def evaluate(injector: Injector, workload: Workload, namespace: str) -> Outcome:
    """The webhook's outcome for the Pod, asked with the JSON the API server would send."""
    return injector.evaluate(to_plain(workload.pod()), namespace)


def injected_pod(workload: Workload, outcome: Outcome) -> dict[str, Any]:
    """A copy of the workload's Pod with the outcome's patch applied; the workload is unchanged."""
    operations = [{**op, "value": with_block_strings(op["value"])} for op in outcome.operations]
    # A copy, so that objects the YAML shares through anchors change only in the template.
    return jsonpatch.apply_patch(copy.deepcopy(workload.pod()), operations, in_place=True)


def inject(injector: Injector, workload: Workload, namespace: str) -> Outcome:
    """Decides for the workload and, when the proxy is injected, changes its Pod in place."""
    outcome = evaluate(injector, workload, namespace)
    if outcome.decision == "injected":
        workload.replace_pod(injected_pod(workload, outcome))
    return outcome
