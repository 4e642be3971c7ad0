"""`inject`, `uninject` and `explain`: the webhook's injection, offline, on manifest files.

Each reads YAML (several documents) or JSON from files, directories (their *.yaml, *.yml and
*.json, sorted) or stdin, and finds the Pods and the Pod templates of Deployments,
StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and CronJobs, also inside
a `kind: List`. Every other document is passed through unchanged. The configuration comes from
--config or from the environment, exactly as the webhook's does.

`inject` and `uninject` write the documents to stdout and a line per workload to stderr;
`explain` writes why each workload is or is not injected, and what would be added, to stdout.
Input without any document (an empty file) is nothing to do: exit 0, and stderr says so.

Exit codes: 0 done, 1 invalid input or a Pod the webhook would deny (nothing is written to
stdout by inject or uninject then), 2 usage error.
"""

import argparse
import os
import sys
from collections import Counter

from injector.core.engine import Injector, Outcome
from injector.core.keys import Keys
from injector.core.policy import Reason
from injector.errors import ManifestError
from injector.kube.names import check_dns_label
from injector.manifests.documents import Document
from injector.manifests.explain import explanation
from injector.manifests.inject import evaluate, inject, namespace_for
from injector.manifests.read import read_documents
from injector.manifests.uninject import uninject
from injector.manifests.workloads import Workload, find_workloads
from injector.manifests.write import write_json, write_yaml
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
        "in the manifests, and writes them to stdout; each workload's decision goes to stderr.",
    )
    _add_input_arguments(inject_command)
    _add_namespace_argument(inject_command)
    _add_output_argument(inject_command)
    inject_command.set_defaults(run=_inject)

    uninject_command = commands.add_parser(
        "uninject",
        epilog=EXIT_CODES,
        help="remove what inject (or the webhook) added to manifests",
        description="Removes exactly what each workload's status annotation says was "
        "injected, and writes the manifests to stdout.",
    )
    _add_input_arguments(uninject_command)
    _add_output_argument(uninject_command)
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
    explain_command.set_defaults(run=_explain)


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE",
        help="a manifest, a directory of them, or - for stdin (repeatable)",
    )
    parser.add_argument("--config", help="injector configuration file (else the environment)")


def _add_namespace_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n",
        "--namespace",
        type=_namespace,
        help="the namespace to decide for (default: each object's own, else default)",
    )


def _add_output_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml (default; keeps comments) or json (several objects as a v1 List)",
    )


def _namespace(text: str) -> str:
    try:
        return check_dns_label(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _inject(args: argparse.Namespace) -> int:
    injector, documents, workloads = _load(args)
    if not documents:
        return 0
    decisions: Counter[str] = Counter()
    failed = False
    for workload in workloads:
        outcome = inject(injector, workload, namespace_for(workload, args.namespace))
        problem = _problem(workload, outcome)
        if problem is None:
            _report(workload, outcome)
            decisions[outcome.decision] += 1
        else:
            _error(f"{workload.describe()}: {problem}")
            decisions["denied" if outcome.decision == "denied" else "invalid"] += 1
            failed = True
    _summary(decisions, workloads, documents)
    return 1 if failed else _write(documents, args.output)


def _uninject(args: argparse.Namespace) -> int:
    injector, documents, workloads = _load(args)
    if not documents:
        return 0
    keys = Keys(injector.config.annotation_prefix)
    results: Counter[str] = Counter()
    failed = False
    for workload in workloads:
        try:
            result = "uninjected" if uninject(workload, keys) else "not injected"
            _stderr(f"{workload.describe()}: {result}")
        except ManifestError as error:
            _error(str(error))
            result = "invalid"
            failed = True
        results[result] += 1
    _summary(results, workloads, documents)
    return 1 if failed else _write(documents, args.output)


def _explain(args: argparse.Namespace) -> int:
    injector, documents, workloads = _load(args)
    if not documents:
        return 0
    print(f"configuration digest {injector.digest}")
    failed = False
    for workload in workloads:
        namespace = namespace_for(workload, args.namespace)
        outcome = evaluate(injector, workload, namespace)
        print()
        print(explanation(workload, namespace, outcome), end="")
        problem = _problem(workload, outcome)
        if problem is not None:
            _error(f"{workload.describe()}: {problem}")
            failed = True
    if not workloads:
        print(f"no workloads in {_count(len(documents), 'document')}")
    return 1 if failed else 0


def _load(args: argparse.Namespace) -> tuple[Injector, list[Document], list[Workload]]:
    """The injector, the documents and their workloads; says so when there are no documents.

    Raises an InjectorError for a configuration or input that cannot be used.
    """
    injector = Injector(config_for_tools(args.config, os.environ))
    documents = read_documents(args.filename)
    workloads = [workload for document in documents for workload in find_workloads(document)]
    if not documents:
        names = ", ".join("stdin" if name == "-" else name for name in args.filename)
        _stderr(f"nothing to do: no documents in {names}")
    return injector, documents, workloads


def _problem(workload: Workload, outcome: Outcome) -> str | None:
    """Why the outcome makes the input invalid, as the webhook or the API server would say."""
    if outcome.decision == "denied":
        return f"denied ({outcome.reason}): {outcome.detail}"
    if outcome.reason == Reason.MALFORMED_POD:
        if workload.template_path:
            return f"{workload.template_path} is not a valid Pod template: {outcome.detail}"
        return f"not a valid Pod: {outcome.detail}"
    return None


def _report(workload: Workload, outcome: Outcome) -> None:
    reason = "" if outcome.reason == outcome.decision else f" ({outcome.reason})"
    _stderr(f"{workload.describe()}: {outcome.decision}{reason}")
    for warning in outcome.warnings:
        _stderr(f"  warning: {warning}")


def _summary(results: Counter[str], workloads: list[Workload], documents: list[Document]) -> None:
    where = f"in {_count(len(documents), 'document')}"
    if not workloads:
        _stderr(f"no workloads {where}: passed through unchanged")
        return
    counts = ", ".join(f"{n} {result}" for result, n in sorted(results.items()))
    _stderr(f"{_count(len(workloads), 'workload')} {where}: {counts}")


def _write(documents: list[Document], output: str) -> int:
    if output == "json":
        write_json(documents, sys.stdout)
    else:
        write_yaml(documents, sys.stdout)
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _error(message: str) -> None:
    _stderr(f"error: {message}")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)
