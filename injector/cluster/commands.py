"""`certs` and `webhook-config`: point a local cluster at a webhook served from this machine."""

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from injector.errors import InvalidArgument, MissingDependency


def add_commands(commands: argparse._SubParsersAction) -> None:
    certs = commands.add_parser(
        "certs",
        help="create a development CA and a serving certificate",
        description="Writes tls.crt and tls.key into --out-dir, signed by the CA in ca.crt and "
        "ca.key there, which is created when absent and otherwise reused, so that a caBundle "
        "already applied keeps working. A CA that cannot be reused is refused without --force.",
    )
    certs.add_argument("--out-dir", type=Path, default=Path("dev-certs"))
    certs.add_argument(
        "--host",
        action="append",
        required=True,
        help="DNS name or IP address the certificate is for (repeatable)",
    )
    certs.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    certs.add_argument(
        "--force", action="store_true", help="create a new CA even if --out-dir has one"
    )
    certs.set_defaults(run=_certs)

    config = commands.add_parser(
        "webhook-config",
        help="print a MutatingWebhookConfiguration for a webhook URL",
        description="Prints YAML for kubectl apply -f -, with the selectors and rules that "
        "the Terraform deployment uses.",
    )
    config.add_argument("--url", required=True, help="https URL of the webhook (with its token)")
    config.add_argument(
        "--ca-bundle",
        type=Path,
        help="PEM CA certificate(s) the API server should trust for the webhook (not a key)",
    )
    config.add_argument("--config", help="injector configuration file (else the environment)")
    config.add_argument("--failure-policy", choices=("Fail", "Ignore"), default="Fail")
    config.add_argument("--timeout", type=int, default=10, help="timeoutSeconds, 1 to 30")
    config.add_argument(
        "--exclude-namespace", action="append", default=[], help="also exclude (repeatable)"
    )
    config.add_argument("--name", default="mesh-injector", help="metadata.name")
    config.set_defaults(run=_webhook_config)


def _certs(args: argparse.Namespace) -> int:
    _need_cryptography("certs")
    from injector.cluster.dev_certs import create_dev_certificates

    issued = create_dev_certificates(args.out_dir, args.host, args.days, args.force)
    ca, _, serving, _ = issued.paths
    action = "reused" if issued.reused_ca else "created"
    print(
        f"{action} the CA {ca}, valid until {issued.ca_valid_until:%Y-%m-%d %H:%M} UTC",
        file=sys.stderr,
    )
    until = f"{issued.valid_until:%Y-%m-%d %H:%M} UTC"
    capped = ", when the CA expires (--force creates a new CA)" if issued.capped_by_ca else ""
    print(
        f"issued {serving} for {', '.join(args.host)}, valid until {until}{capped}", file=sys.stderr
    )
    for path in issued.paths:
        print(path)
    return 0


def _webhook_config(args: argparse.Namespace) -> int:
    from injector.cluster.webhook_config import build_webhook_configuration
    from injector.kube.yaml import dump_yaml
    from injector.service.sources import config_for_tools

    config = config_for_tools(args.config, os.environ)
    ca_bundle = None
    if args.ca_bundle:
        ca_bundle = _read_ca_bundle(args.ca_bundle)
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


def _read_ca_bundle(path: Path) -> bytes:
    """The PEM of the trust anchors in `path`, and nothing else that was in the file."""
    _need_cryptography("--ca-bundle")
    from cryptography.hazmat.primitives.serialization import Encoding

    from injector.cluster.trust_anchors import check_trust_anchors

    try:
        pem = path.read_bytes()
    except OSError as error:
        raise InvalidArgument(f"--ca-bundle {path} cannot be read: {error.strerror}") from None
    anchors = check_trust_anchors(pem, f"--ca-bundle {path}")
    return b"".join(certificate.public_bytes(Encoding.PEM) for certificate in anchors)


def _need_cryptography(what: str) -> None:
    if importlib.util.find_spec("cryptography") is None:
        raise MissingDependency(
            f"{what} needs the cryptography package: pip install 'injector[certs]'"
        )
