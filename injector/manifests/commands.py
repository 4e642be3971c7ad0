"""`inject`, `uninject` and `explain`: the webhook's injection, offline, on manifest files.

Each reads YAML (several documents) or JSON from files, directories (their *.yaml, *.yml and
*.json, sorted; with -R, their subdirectories' too) or stdin, and finds the Pods and the Pod
templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs,
CronJobs, OpenShift DeploymentConfigs and Argo Rollouts, also inside a `kind: List`. Every
other document is passed through as it was read, byte for byte; in a changed document, only
the text of what was added or removed changes. The configuration comes from --config or from
the environment, exactly as the webhook's does.

`inject` and `uninject` write the documents to stdout and a line per workload to stderr;
`explain` writes why each workload is or is not injected, and what would be added, to stdout
(in words, or with -o json as one JSON object). Input without any document is nothing to do:
exit 0, and stderr says so.

As kubectl does, -n gives the namespace of the objects without one, and contradicting an
object's own metadata.namespace is an error naming both.

Exit codes: 0 done, 1 invalid input or a Pod the webhook would deny (nothing is written to
stdout by inject or uninject then), 2 usage error.
"""

import argparse
import os
import sys
from collections import Counter
from collections.abc import Iterable
from typing import Any

from injector.core.engine import Injector, Outcome
from injector.core.policy import Reason
from injector.errors import ManifestError
from injector.kube.names import check_dns_label
from injector.manifests.documents import Changed, Document, Manifest
from injector.manifests.explain import explanation, explanation_json
from injector.manifests.inject import evaluate, inject_document, namespace_for
from injector.manifests.read import read_manifests
from injector.manifests.uninject import uninject_document
from injector.manifests.workloads import (
    Findings,
    Workload,
    find_workloads,
    misplaced_settings,
    objects,
)
from injector.manifests.write import json_stream, to_json, yaml_stream
from injector.service.sources import config_for_tools

EXIT_CODES = (
    "exit codes: 0 done (also for input without any document), 1 invalid input or a Pod the "
    "webhook would deny, 2 usage error"
)


def add_commands(commands: argparse._SubParsersAction) -> None:
    inject_command = commands.add_parser(
        "inject",
        epilog=EXIT_CODES,
        help="add the proxy to the Pods and Pod templates in manifests",
        description="Injects the proxy as the webhook would, into every Pod and Pod template "
        "in the manifests, and writes them to stdout; each workload's decision goes to stderr. "
        "Only what is added changes: uninject gives back the text byte for byte.",
    )
    _add_input_arguments(inject_command)
    _add_namespace_argument(inject_command)
    _add_output_argument(inject_command, "documents as read, with what is added written in")
    inject_command.set_defaults(run=_inject)

    uninject_command = commands.add_parser(
        "uninject",
        epilog=EXIT_CODES,
        help="remove what inject (or the webhook) added to manifests",
        description="Removes exactly what each workload's status annotation says was "
        "injected, and writes the manifests to stdout.",
    )
    _add_input_arguments(uninject_command)
    _add_output_argument(uninject_command, "documents as read, with what is removed cut out")
    uninject_command.set_defaults(run=_uninject)

    explain_command = commands.add_parser(
        "explain",
        epilog=EXIT_CODES,
        help="say whether and why each workload in manifests would be injected",
        description="For each Pod and Pod template: the decision, what decided it, the "
        "overrides and warnings, and a diff of what injection would add.",
    )
    _add_input_arguments(explain_command)
    _add_namespace_argument(explain_command)
    explain_command.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text (default) or json: one object with each workload's decision, reason, "
        "warnings and JSON Patch, for scripts",
    )
    explain_command.set_defaults(run=_explain)


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        type=_filename,
        metavar="FILE",
        help="a manifest, a directory of them, or - for stdin (repeatable)",
    )
    parser.add_argument(
        "-R",
        "--recursive",
        action="store_true",
        help="also read the manifests in the subdirectories of the directories given with -f",
    )
    parser.add_argument("--config", help="injector configuration file (else the environment)")


def _add_namespace_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n",
        "--namespace",
        type=_namespace,
        help="the namespace of the objects that do not name one (default: default)",
    )


def _add_output_argument(parser: argparse.ArgumentParser, yaml_help: str) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=("yaml", "json"),
        default="yaml",
        help=f"yaml (default: the {yaml_help}) or json (several objects as a v1 List)",
    )


def _filename(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("a file name cannot be empty")
    return text


def _namespace(text: str) -> str:
    try:
        return check_dns_label(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _inject(args: argparse.Namespace) -> int:
    injector, manifests, found = _load(args)
    if _namespace_conflicts(found, args.namespace):
        return 1
    decisions: Counter[str] = Counter()
    failed = False
    for document, findings in found:
        _notes(findings)
        outcomes = []
        for workload in findings.workloads:
            outcome = evaluate(injector, workload, namespace_for(workload, args.namespace))
            problem = _problem(workload, outcome)
            if problem is not None:
                _error(f"{workload.describe()}: {problem}")
                decisions["denied" if outcome.decision == "denied" else "invalid"] += 1
                failed = True
                continue
            _report(workload, outcome, misplaced_settings(workload, injector.keys.prefix))
            decisions[outcome.decision] += 1
            outcomes.append((workload, outcome))
        if not failed:
            for warning in inject_document(document, outcomes, injector.keys):
                _stderr(f"{document.where()}: warning: {warning}")
    _summary(decisions, found)
    return 1 if failed else _write(manifests, args.output)


def _uninject(args: argparse.Namespace) -> int:
    injector, manifests, found = _load(args)
    results: Counter[str] = Counter()
    failed = False
    for document, findings in found:
        _notes(findings)
        try:
            uninjected, rewrite = uninject_document(document, injector.keys)
        except ManifestError as error:
            _error(str(error))
            results["invalid"] += len(findings.workloads)
            failed = True
            continue
        for workload, done in zip(findings.workloads, uninjected, strict=True):
            result = "uninjected" if done else "not injected"
            _stderr(f"{workload.describe()}: {result}")
            results[result] += 1
        if rewrite is not None:
            document.changed = Changed(rewrite.data, rewrite.text)
            if rewrite.written_anew is not None:
                _stderr(
                    f"{document.where()}: warning: written anew, as its text could not be "
                    f"edited in place ({rewrite.written_anew}): its layout may change"
                )
    _summary(results, found)
    return 1 if failed else _write(manifests, args.output)


def _explain(args: argparse.Namespace) -> int:
    injector, _, found = _load(args)
    if _namespace_conflicts(found, args.namespace):
        return 1
    sections: list[str] = []
    reports: list[dict[str, Any]] = []
    notes: list[str] = []
    failed = False
    for _, findings in found:
        notes += findings.notes
        sections += findings.notes
        for workload in findings.workloads:
            namespace = namespace_for(workload, args.namespace)
            outcome = evaluate(injector, workload, namespace)
            warnings = misplaced_settings(workload, injector.keys.prefix)
            if args.output == "json":
                reports.append(explanation_json(workload, namespace, outcome, warnings))
            else:
                sections.append(explanation(workload, namespace, outcome, warnings))
            problem = _problem(workload, outcome)
            if problem is not None:
                _error(f"{workload.describe()}: {problem}")
                failed = True
    if args.output == "json":
        report = {"configurationDigest": injector.digest, "workloads": reports, "notes": notes}
        _print(to_json(report, indent=True).decode() + "\n")
    elif found:
        print(f"configuration digest {injector.digest}")
        for section in sections:
            print()
            print(section.rstrip("\n"))
        if not any(findings.workloads for _, findings in found):
            print(f"\nno workloads in {_count(len(found), 'document')}")
    return 1 if failed else 0


Found = list[tuple[Document, Findings]]


def _load(args: argparse.Namespace) -> tuple[Injector, list[Manifest], Found]:
    """The injector, the manifests, and each document's workloads; says so when there are no
    documents.

    Raises an InjectorError for a configuration or input that cannot be used.
    """
    injector = Injector(config_for_tools(args.config, os.environ))
    manifests = read_manifests(args.filename, recursive=args.recursive)
    found = [(d, find_workloads(d)) for manifest in manifests for d in manifest.documents]
    if not found:
        names = ", ".join("stdin" if name == "-" else name for name in args.filename)
        _stderr(f"nothing to do: no documents in {names}")
    return injector, manifests, found


def _namespace_conflicts(found: Found, given: str | None) -> bool:
    """Says, as kubectl does, for each object whose own namespace is not the one given with
    -n, that they differ; whether any did."""
    if given is None:
        return False
    conflicts = False
    for document, _ in found:
        for obj in objects(document):
            if obj.namespace is not None and obj.namespace != given:
                _error(
                    f"{obj.describe(document)}: the namespace from the provided object "
                    f'"{obj.namespace}" does not match the namespace "{given}" given with -n: '
                    f"pass -n {obj.namespace}, or leave -n out"
                )
                conflicts = True
    return conflicts


def _problem(workload: Workload, outcome: Outcome) -> str | None:
    """Why the outcome makes the input invalid, as the webhook or the API server would say."""
    if outcome.decision == "denied":
        return f"denied ({outcome.reason}): {outcome.detail}"
    if outcome.reason == Reason.MALFORMED_POD:
        if workload.template_path:
            return f"{workload.template_path} is not a valid Pod template: {outcome.detail}"
        return f"not a valid Pod: {outcome.detail}"
    return None


def _report(workload: Workload, outcome: Outcome, warnings: Iterable[str]) -> None:
    reason = "" if outcome.reason == outcome.decision else f" ({outcome.reason})"
    _stderr(f"{workload.describe()}: {outcome.decision}{reason}")
    for warning in (*outcome.warnings, *warnings):
        _stderr(f"  warning: {warning}")


def _notes(findings: Findings) -> None:
    for note in findings.notes:
        _stderr(note)


def _summary(results: Counter[str], found: Found) -> None:
    if not found:
        return
    where = f"in {_count(len(found), 'document')}"
    workloads = sum(len(findings.workloads) for _, findings in found)
    if not workloads:
        _stderr(f"no workloads {where}: passed through unchanged")
        return
    counts = ", ".join(f"{n} {result}" for result, n in sorted(results.items()))
    _stderr(f"{_count(workloads, 'workload')} {where}: {counts}")


def _write(manifests: list[Manifest], output: str) -> int:
    if output == "json":
        _print(json_stream([d for manifest in manifests for d in manifest.documents]))
    else:
        _print(yaml_stream(manifests))
    return 0


def _print(text: str) -> None:
    """Writes text to stdout as UTF-8, exactly: no newline translation, whatever the locale."""
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode())
    sys.stdout.buffer.flush()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _error(message: str) -> None:
    _stderr(f"error: {message}")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)
