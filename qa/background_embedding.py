"""A question's embedding on a few shared threads, so that its other work runs meanwhile.

The model (ONNX Runtime, or torch) releases the GIL while it computes, and so do
tantivy's searches: the question's tokens, their idf and the keyword search can run on
the request's thread while a worker embeds the question. One executor per retriever,
with a fixed number of workers; when all of them are busy (many requests at once), the
request embeds on its own thread, as it would without this, rather than queue.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

# Two cores: more workers than that would only queue inside the model.
WORKERS = 2

T = TypeVar("T")


class Pending(Generic[T]):
    """A value being computed; `result()` waits for it (and raises what it raised)."""

    def __init__(self, future: Future[T] | None = None, value: T | None = None):
        self._future = future
        self._value = value

    def result(self) -> T:
        if self._future is not None:
            return self._future.result()
        return self._value  # type: ignore[return-value]


class BackgroundWork:
    """Runs calls on at most `workers` shared threads, or inline when none is free."""

    def __init__(self, workers: int = WORKERS):
        self.workers = workers
        self._free = threading.BoundedSemaphore(workers)
        # Created on first use: most retrievers of tests and scripts never ask.
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def start(self, call: Callable[[], T]) -> Pending[T]:
        """`call()` started on a free worker; computed here and now if none is free."""
        if self.workers <= 0 or not self._free.acquire(blocking=False):
            return Pending(value=call())
        try:
            future = self._pool().submit(call)
        except BaseException:
            self._free.release()
            raise
        future.add_done_callback(lambda _: self._free.release())
        return Pending(future=future)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="qa-embed")
            return self._executor

    def close(self) -> None:
        """Stop the workers (waits for calls already running)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
