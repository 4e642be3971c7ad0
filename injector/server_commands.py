"""`serve`, `certs` and `webhook-config`: run the webhook and point a local cluster at it."""

import argparse
import os
import sys
from pathlib import Path

MAIN_PY = Path(__file__).resolve().parent.parent / "main.py"


def add_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the webhook (gunicorn, as deployed) over HTTP or HTTPS",
        description="Serves the same functions-framework app as the Cloud Function. "
        "Configuration comes from the INJECTOR_* environment variables or --config.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate chain: serve HTTPS")
    serve.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    serve.add_argument("--config", help="configuration file (sets INJECTOR_CONFIG_FILE)")
    serve.set_defaults(run=_serve)

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


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _serve(args: argparse.Namespace) -> int:
    if (args.tls_cert is None) != (args.tls_key is None):
        return _fail("--tls-cert and --tls-key go together")
    if args.config:
        os.environ["INJECTOR_CONFIG_FILE"] = args.config
    from functions_framework import create_app
    from functions_framework._http import create_server

    options = {}
    if args.tls_cert:
        options = {"certfile": str(args.tls_cert), "keyfile": str(args.tls_key)}
    app = create_app(target="mutate", source=str(MAIN_PY))
    create_server(app, False, **options).run(args.host, args.port)
    return 0


def _certs(args: argparse.Namespace) -> int:
    from injector.dev_certs import create_dev_certificates

    for path in create_dev_certificates(args.out_dir, args.host, args.days):
        print(path)
    return 0


def _webhook_config(args: argparse.Namespace) -> int:
    from injector.config import ConfigError
    from injector.secret_manager import SecretUnavailable
    from injector.sources import SourceError, config_for_tools
    from injector.webhook_config import build_webhook_configuration
    from injector.yaml_output import dump_yaml

    try:
        config = config_for_tools(args.config, os.environ)
        ca_bundle = args.ca_bundle.read_bytes() if args.ca_bundle else None
        manifest = build_webhook_configuration(
            config,
            args.url,
            ca_bundle_pem=ca_bundle,
            failure_policy=args.failure_policy,
            timeout_seconds=args.timeout,
            extra_excluded_namespaces=tuple(args.exclude_namespace),
            name=args.name,
        )
    except (ConfigError, SourceError, SecretUnavailable, OSError, ValueError) as error:
        return _fail(str(error))
    dump_yaml(manifest, sys.stdout)
    return 0
