"""Long observations that run while other tests run: an event loop in a thread of its own.

Watching an idle connection is waiting, not work: a 60 s pre-session timeout costs 60 s
whether one connection is watched or six. Observations submitted here start at once and
run side by side, also while the tests that come first are running; each test then takes
the result of its own observation, with a bound.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# The environment variable naming a file to which the batches of suites/batch.py append
# how long each of their checks took ("6.12s check <test id>", in the manner of pytest's
# --durations), for bench/time_to_verdict.py.
CHECK_SECONDS = "XC_CHECK_SECONDS"


class BackgroundTimeout(AssertionError):
    """An observation did not finish within its bound."""


class Background:
    """An asyncio loop running in a daemon thread; `close` cancels what is left."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._futures: dict[str, concurrent.futures.Future[Any]] = {}
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def submit(self, key: str, work: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Starts `work` on the background loop under a name; results are taken by name."""
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        self._futures[key] = future
        return future

    def has(self, key: str) -> bool:
        return key in self._futures

    def result(self, key: str, timeout: float, what: str) -> Any:
        """The result of observation `key`, waiting at most `timeout` seconds for it."""
        future = self._futures[key]
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BackgroundTimeout(
                f"{self.name}: {what} did not finish within {timeout:g} s"
            ) from None

    def close(self, timeout: float = 10.0) -> None:
        """Cancels unfinished observations (their clients close) and stops the thread."""
        for future in self._futures.values():
            future.cancel()
        if self._loop.is_running():
            drained = asyncio.run_coroutine_threadsafe(self._cancel_all(), self._loop)
            try:
                drained.result(timeout=timeout)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                log.warning("%s: tasks still running after %g s at close", self.name, timeout)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=timeout)
        if not self._thread.is_alive():
            self._loop.close()

    async def _cancel_all(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
