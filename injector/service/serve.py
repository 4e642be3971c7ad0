"""`serve`: the webhook's functions-framework app, served by gunicorn over HTTP or HTTPS.

The app is the deployed function's own (`functions_framework.create_app` on
`injector.service.function`), served the way functions-framework serves it (one gunicorn worker,
four threads per CPU, no request timeout), with TLS when a certificate is given.
"""

import argparse
import importlib.util
import os
from pathlib import Path
from typing import Any

from injector.errors import InvalidArgument


def add_command(commands: argparse._SubParsersAction) -> None:
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


def _serve(args: argparse.Namespace) -> int:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise InvalidArgument("--tls-cert and --tls-key go together")
    if args.config:
        os.environ["INJECTOR_CONFIG_FILE"] = args.config
    from functions_framework import create_app

    from injector.service.server import Server

    options: dict[str, Any] = {"bind": f"{args.host}:{args.port}"}
    if args.tls_cert:
        options |= {"certfile": str(args.tls_cert), "keyfile": str(args.tls_key)}
    function = importlib.util.find_spec("injector.service.function")
    assert function is not None and function.origin is not None
    Server(create_app(target="mutate", source=function.origin), options).run()
    return 0
