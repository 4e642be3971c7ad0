"""`serve`: the webhook's functions-framework app, served by gunicorn over HTTP or HTTPS.

The app is the deployed function's own (`functions_framework.create_app` on
`injector.service.function`), served the way functions-framework serves it (one gunicorn worker,
four threads per CPU, no request timeout), with TLS when a certificate is given.

Unlike the deployed function, which keeps answering (503, and the failure policy) while its
configuration cannot be loaded, `serve` is a command someone is watching: a configuration,
token set or TLS file that cannot be used ends it at start with one line saying why.
"""

import argparse
import importlib.util
import os
import ssl
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from injector.errors import InvalidArgument


def add_command(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the webhook (gunicorn, as deployed) over HTTP or HTTPS",
        description="Serves the same functions-framework app as the Cloud Function. "
        "Configuration comes from the INJECTOR_* environment variables or --config. "
        "Prints the URL it serves on once it listens.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=8080, help="port to bind (default 8080; 0: any free port)"
    )
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate chain: serve HTTPS")
    serve.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    serve.add_argument(
        "--config", help="configuration file (instead of INJECTOR_CONFIG_FILE or _SECRET)"
    )
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise InvalidArgument("--tls-cert and --tls-key go together")
    if args.config:
        os.environ.pop("INJECTOR_CONFIG_SECRET", None)
        os.environ["INJECTOR_CONFIG_FILE"] = args.config
    options: dict[str, Any] = {"bind": f"{args.host}:{args.port}", "when_ready": _print_url}
    if args.tls_cert:
        check_tls_files(args.tls_cert, args.tls_key)
        options |= {"certfile": str(args.tls_cert), "keyfile": str(args.tls_key)}
    check_sources(os.environ)

    from functions_framework import create_app

    from injector.service.server import Server

    function = importlib.util.find_spec("injector.service.function")
    assert function is not None and function.origin is not None
    Server(create_app(target="mutate", source=function.origin), options).run()
    return 0


def check_sources(environ: Mapping[str, str]) -> None:
    """Loads the configuration and the tokens the environment names, once, as the server will.

    Raises the InjectorError that says why one cannot be used (SourceError, ConfigError,
    InvalidTokens, SecretUnavailable)."""
    from injector.service.sources import environment

    sources = environment(environ)
    sources.config.load()
    if sources.tokens is not None:
        sources.tokens.load()


def check_tls_files(cert: Path, key: Path) -> None:
    """InvalidArgument unless `cert` is a readable PEM certificate chain and `key` its key."""
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        try:
            path.read_bytes()
        except OSError as error:
            raise InvalidArgument(f"{option} {path} cannot be read: {error.strerror}") from None
    try:
        # An empty password: an encrypted key is refused rather than prompted for.
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=b"")
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            problem = f"--tls-key {key} is not the private key of --tls-cert {cert}"
        else:
            problem = (
                f"--tls-cert {cert} and --tls-key {key} are not a PEM certificate chain and "
                "its unencrypted private key"
            )
        raise InvalidArgument(problem) from None


def _print_url(server: Any) -> None:
    """gunicorn's when_ready hook: the arbiter listens; say where (the actual port, for 0)."""
    for listener in server.LISTENERS:
        print(f"serving on {listener}/", file=sys.stderr, flush=True)
