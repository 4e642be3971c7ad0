"""`certs` and `webhook-config`: point a local cluster at a webhook served from this machine."""

import argparse
import os
import sys
from pathlib import Path

from injector.errors import InvalidArgument


def add_commands(commands: argparse._SubParsersAction) -> None:
    certs = commands.add_parser(
        "certs",
        help="create a development CA and a serving certificate",
        description="Writes ca.crt, ca.key, tls.crt and tls.key into --out-dir.",
    )
    certs.add_argument("--out-dir", type=Path, default=Path("dev-certs"))
    certs.add_argument(
        "--host",
        action="append",
        required=True,
        help="DNS name or IP address the certificate is for (repeatable)",
    )
    certs.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    certs.set_defaults(run=_certs)

    config = commands.add_parser(
        "webhook-config",
        help="print a MutatingWebhookConfiguration for a webhook URL",
        description="Prints YAML for kubectl apply -f -, with the selectors and rules that "
        "the Terraform deployment uses.",
    )
    config.add_argument("--url", required=True, help="https URL of the webhook (with its token)")
    config.add_argument("--ca-bundle", type=Path, help="PEM CA the API server should trust")
    config.add_argument("--config", help="injector configuration file (else the environment)")
    config.add_argument("--failure-policy", choices=("Fail", "Ignore"), default="Fail")
    config.add_argument("--timeout", type=int, default=10, help="timeoutSeconds, 1 to 30")
    config.add_argument(
        "--exclude-namespace", action="append", default=[], help="also exclude (repeatable)"
    )
    config.add_argument("--name", default="mesh-injector", help="metadata.name")
    config.set_defaults(run=_webhook_config)


def _certs(args: argparse.Namespace) -> int:
    from injector.cluster.dev_certs import create_dev_certificates

    for path in create_dev_certificates(args.out_dir, args.host, args.days):
        print(path)
    return 0


def _webhook_config(args: argparse.Namespace) -> int:
    from injector.cluster.webhook_config import build_webhook_configuration
    from injector.kube.yaml import dump_yaml
    from injector.service.sources import config_for_tools

    config = config_for_tools(args.config, os.environ)
    ca_bundle = None
    if args.ca_bundle:
        try:
            ca_bundle = args.ca_bundle.read_bytes()
        except OSError as error:
            message = f"--ca-bundle {args.ca_bundle} cannot be read: {error.strerror}"
            raise InvalidArgument(message) from None
    manifest = build_webhook_configuration(
        config,
        args.url,
        ca_bundle_pem=ca_bundle,
        failure_policy=args.failure_policy,
        timeout_seconds=args.timeout,
        extra_excluded_namespaces=tuple(args.exclude_namespace),
        name=args.name,
    )
    dump_yaml(manifest, sys.stdout)
    return 0
