"""Cloud Function entry point: the mutating admission webhook `mutate`."""

import functions_framework
from flask import Request, Response

from injector.function import answer, load_webhook

webhook = load_webhook()


@functions_framework.http
def mutate(request: Request) -> Response:
    return answer(webhook, request)
