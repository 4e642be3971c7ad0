"""A gunicorn server for the webhook's app, set up the way functions-framework sets up its own:
one worker, four threads per CPU, no request timeout, no limit on the request line."""

import os
from typing import Any

from gunicorn.app.base import BaseApplication


class Server(BaseApplication):
    """Serves one WSGI app; `options` are gunicorn settings (bind, certfile, keyfile…)."""

    def __init__(self, app: Any, options: dict[str, Any]):
        self.app = app
        self.options = {
            "workers": 1,
            "threads": (os.cpu_count() or 1) * 4,
            "timeout": 0,
            "limit_request_line": 0,
            "loglevel": "error",
            **options,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.app
