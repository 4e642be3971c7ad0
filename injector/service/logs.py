"""Structured logs: one JSON object a line, in the shape Cloud Logging reads from stdout.

`severity` and `message` are Cloud Logging's own fields; everything passed as
`extra={"fields": {...}}` is added beside them, to be queried as jsonPayload.<field>.
"""

import functools
import logging
import sys
import traceback

import orjson


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"severity": record.levelname, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["stack_trace"] = "".join(traceback.format_exception(*record.exc_info))
        return orjson.dumps(entry, default=str).decode()


@functools.cache
def configure_logging() -> None:
    """Sends the injector's logs to stdout as JSON lines (once per process)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("injector")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
