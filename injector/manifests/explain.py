"""What injection would do to a workload, and why, in words and as a diff of its YAML."""

import difflib
import io
from typing import Any

from injector.core.engine import Outcome
from injector.manifests.documents import YamlStyle
from injector.manifests.inject import injected_pod
from injector.manifests.workloads import POD_FIELDS, Workload
from injector.manifests.write import write_yaml_data

INDENT = "  "


def explanation(workload: Workload, namespace: str, outcome: Outcome) -> str:
    lines = [
        workload.describe(),
        f"{INDENT}namespace: {namespace}",
        f"{INDENT}decision: {outcome.decision}",
        f"{INDENT}reason: {outcome.reason}: {outcome.detail}",
    ]
    lines += [f"{INDENT}override: {key}={value}" for key, value in outcome.overrides.items()]
    lines += [f"{INDENT}warning: {warning}" for warning in outcome.warnings]
    lines += [f"{INDENT}note: {note}" for note in outcome.notes]
    if outcome.decision == "injected":
        where = workload.template_path or "the Pod"
        lines.append(f"{INDENT}changes to {where}:")
        lines += [f"{INDENT * 2}{line}" for line in _diff(workload, outcome)]
    else:
        lines.append(f"{INDENT}changes: none")
    return "\n".join(lines) + "\n"


def _diff(workload: Workload, outcome: Outcome) -> list[str]:
    style = workload.document.style
    before = _yaml_lines(workload.pod(), style)
    after = _yaml_lines(injected_pod(workload, outcome), style)
    name = f"{workload.kind}/{workload.name} {workload.template_path}".rstrip()
    diff = difflib.unified_diff(before, after, f"{name} (as written)", f"{name} (injected)")
    return [line.rstrip("\n") for line in diff]


def _yaml_lines(pod: dict[str, Any], style: YamlStyle) -> list[str]:
    text = io.StringIO()
    write_yaml_data({key: pod[key] for key in POD_FIELDS if key in pod}, style, text)
    text.seek(0)
    return text.readlines()  # at "\n" only, as YAML breaks lines
