"""A local Secret Manager endpoint holding one secret version, for the real client library
(REST transport) to read the configuration from."""

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import google_crc32c
import orjson

SECRET = "projects/p/secrets/s"
VERSION = f"{SECRET}/versions/latest"


def _handler(data: bytes) -> type[BaseHTTPRequestHandler]:
    access = {
        "name": f"{SECRET}/versions/1",
        "payload": {
            "data": base64.b64encode(data).decode(),
            "dataCrc32c": str(google_crc32c.value(data)),  # int64 fields are JSON strings
        },
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path.split("?")[0] == f"/v1/{VERSION}:access"
            body = orjson.dumps(access if found else {"error": {"code": 404}})
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serving(data: bytes) -> Iterator[str]:
    """Serves `data` as the secret VERSION; yields the endpoint, http://127.0.0.1:PORT."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(data))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
