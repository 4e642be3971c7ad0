"""The webhook as a functions-framework HTTP function: `mutate`, the deployed entry point.

Importing this module builds the webhook from the INJECTOR_* environment variables (see
`injector.service.sources`) and loads its configuration once; functions-framework then calls
`mutate` with a flask request for every HTTP request.
"""

import os

import functions_framework
from flask import Request, Response

from injector.service.logs import configure_logging
from injector.service.webhook import Webhook


def load_webhook() -> Webhook:
    configure_logging()
    return Webhook.from_environment(os.environ)


def _reader(request: Request):
    def read(limit: int) -> bytes:
        chunks, size = [], 0
        while size < limit:
            chunk = request.stream.read(limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)

    return read


def answer(webhook: Webhook, request: Request) -> Response:
    """The webhook's answer to a flask request, as a flask response."""
    result = webhook.handle(
        request.method,
        request.path,
        request.content_type,
        request.content_length,
        _reader(request),
    )
    return Response(result.body, result.status, headers=list(result.headers))


webhook = load_webhook()


@functions_framework.http
def mutate(request: Request) -> Response:
    return answer(webhook, request)
