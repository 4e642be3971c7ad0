"""A value loaded from a source and reloaded after a time to live.

A reload that fails keeps the last-known-good value. While a value exists, a due reload runs in
a background thread and every caller goes on with the current value: a slow or stalled source
must not hold up an admission review, whose whole deadline is a few seconds. With no value yet,
callers wait for the load, one at a time.
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
        self._lock = threading.Lock()  # held by the one load in progress
        self.last_error: str | None = None

    def get(self) -> T | None:
        if self._clock() < self._next_load:
            return self._value
        if self._value is None:
            with self._lock:
                self._reload_if_due()
        elif self._lock.acquire(blocking=False):
            threading.Thread(
                target=self._reload_and_release, name=f"reload {self._what}", daemon=True
            ).start()
        return self._value

    def _reload_and_release(self) -> None:
        try:
            self._reload_if_due()
        finally:
            self._lock.release()

    def _reload_if_due(self) -> None:
        if self._clock() < self._next_load:
            return  # another caller has just loaded it
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
