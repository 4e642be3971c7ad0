"""The webhook as a functions-framework HTTP function: a flask request in, a response out."""

import os

from flask import Request, Response

from injector.logs import configure_logging
from injector.webhook import Webhook


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
    result = webhook.handle(
        request.method,
        request.path,
        request.content_type,
        request.content_length,
        _reader(request),
    )
    return Response(result.body, result.status, headers=list(result.headers))
