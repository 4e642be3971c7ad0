"""A value loaded from a source and reloaded after a time to live.

A reload that fails keeps the last-known-good value. While a value exists, one request reloads
and the others go on with the current value; with none yet, callers wait for the load.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

RETRY_SECONDS = 5.0  # after a failed load, the next attempt comes sooner than the TTL

log = logging.getLogger("injector")


class Refreshing(Generic[T]):
    def __init__(
        self,
        what: str,
        load: Callable[[], T],
        ttl_seconds: float,
        describe: Callable[[T], str],
        clock: Callable[[], float] = time.monotonic,
    ):
        self._what = what
        self._load = load
        self._ttl = ttl_seconds
        self._describe = describe
        self._clock = clock
        self._value: T | None = None
        self._next_load = float("-inf")
        self._lock = threading.Lock()
        self.last_error: str | None = None

    def get(self) -> T | None:
        if self._clock() >= self._next_load and self._lock.acquire(blocking=self._value is None):
            try:
                if self._clock() >= self._next_load:
                    self._reload()
            finally:
                self._lock.release()
        return self._value

    def _reload(self) -> None:
        try:
            value = self._load()
        except Exception as error:  # any failure keeps the last-known-good value
            self.last_error = f"{type(error).__name__}: {error}"
            self._next_load = self._clock() + min(self._ttl, RETRY_SECONDS)
            kept = "keeping the last-known-good one" if self._value is not None else "none loaded"
            log.error(
                f"loading the {self._what} failed; {kept}",
                extra={"fields": {"error": self.last_error}},
            )
            return
        self._next_load = self._clock() + self._ttl
        self.last_error = None
        if self._value is None or self._describe(value) != self._describe(self._value):
            log.info(
                f"loaded the {self._what}", extra={"fields": {"loaded": self._describe(value)}}
            )
        self._value = value
