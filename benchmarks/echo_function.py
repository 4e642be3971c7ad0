"""The floor over HTTP: a function that parses the body and serialises it back, served by
functions-framework exactly as the webhook is."""

import json

import functions_framework
from flask import Request, Response


@functions_framework.http
def echo(request: Request) -> Response:
    document = json.loads(request.get_data())
    return Response(json.dumps(document), 200, content_type="application/json")
