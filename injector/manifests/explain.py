"""What injection would do to a workload, and why: in words with a diff of its document's
text, or as JSON for scripts."""

import difflib
from typing import Any

from injector.core.engine import Outcome
from injector.manifests.inject import injected
from injector.manifests.workloads import Workload

INDENT = "  "


def explanation(workload: Workload, namespace: str, outcome: Outcome, warnings: list[str]) -> str:
    """The decision, the rule that made it, the overrides, the warnings (the engine's and
    `warnings`), and a unified diff of the text that injection changes."""
    lines = [
        workload.describe(),
        f"{INDENT}namespace: {namespace}",
        f"{INDENT}decision: {outcome.decision}",
        f"{INDENT}reason: {outcome.reason}: {outcome.detail}",
    ]
    lines += [f"{INDENT}override: {key}={value}" for key, value in outcome.overrides.items()]
    lines += [f"{INDENT}warning: {warning}" for warning in (*outcome.warnings, *warnings)]
    lines += [f"{INDENT}note: {note}" for note in outcome.notes]
    if outcome.decision == "injected":
        where = workload.template_path or "the Pod"
        lines.append(f"{INDENT}changes to {where}:")
        lines += [f"{INDENT * 2}{line}" for line in _diff(workload, outcome)]
    else:
        lines.append(f"{INDENT}changes: none")
    return "\n".join(lines) + "\n"


def explanation_json(
    workload: Workload, namespace: str, outcome: Outcome, warnings: list[str]
) -> dict[str, Any]:
    """The same as an object: where the workload is, the decision and reason (the webhook's
    machine-readable reason), the overrides, the warnings, and the RFC 6902 JSON Patch the
    webhook would return for its Pod."""
    return {
        "source": workload.document.source,
        "document": workload.document.index,
        "item": workload.item_path,
        "kind": workload.kind,
        "name": workload.name,
        "templatePath": workload.template_path,
        "namespace": namespace,
        "decision": outcome.decision,
        "reason": str(outcome.reason),
        "detail": outcome.detail,
        "overrides": dict(outcome.overrides),
        "warnings": [*outcome.warnings, *warnings],
        "notes": list(outcome.notes),
        "patch": list(outcome.operations),
    }


def _diff(workload: Workload, outcome: Outcome) -> list[str]:
    document = workload.document
    result = injected(document, [(workload, outcome)])
    before = _display_lines(document.text)
    after = _display_lines(result.text)
    where = document.where()
    diff = difflib.unified_diff(before, after, f"{where} (as written)", f"{where} (injected)")
    lines = [line.removesuffix("\n").removesuffix("\r") for line in diff]
    if result.written_anew is not None:
        lines.insert(0, f"(written anew: {result.written_anew})")
    return lines


def _display_lines(text: str) -> list[str]:
    """The lines as a terminal or an editor shows them, each with its "\n": a scalar holding
    U+2028 or the like (a line break only to a YAML 1.1 reader) stays on its line."""
    return [line + "\n" for line in text.removesuffix("\n").split("\n")] if text else []
