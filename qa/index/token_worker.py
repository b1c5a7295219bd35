"""Keyword tokens computed in a worker process, so jieba runs on one core while the
model embeds on the other.

The worker builds its own `qa.tokenizer.Tokenizer` with the same user words, so its
tokens are those the indexing process would have made. It is started on the first
batch it is given (a start and jieba's dictionary take a second or two, which is why
small writes tokenise in place) and stopped by `close`. A worker that dies or raises
ends the run with one `QAError`; the batch it was working on is not committed, those
committed before it stay.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from qa.errors import QAError
from qa.tokenizer import Tokenizer

_tokenizer: Tokenizer | None = None


def _start(user_words: tuple[str, ...], parent: int) -> None:
    global _tokenizer
    # `parent` comes from the parent itself: one killed while this process was still
    # starting has already left it to another, so os.getppid() here would not be it.
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    _tokenizer = Tokenizer(user_words)
    _tokenizer.load()


def _exit_with_parent(parent: int) -> None:
    # A parent killed with SIGKILL cannot stop its worker, which would wait for work
    # forever; orphaned, it is adopted by another process and ends itself.
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _tokens(texts: list[str]) -> list[list[str]]:
    assert _tokenizer is not None
    return [_tokenizer.tokens(text) for text in texts]


class TokenWorker:
    """One worker process tokenising batches of texts in submission order."""

    def __init__(self, user_words: tuple[str, ...]):
        self._user_words = tuple(user_words)
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, texts: list[str]) -> Future:
        """Start tokenising `texts`; `result` collects the tokens."""
        if self._pool is None:
            # spawn, not fork: the parent holds model threads that a fork would copy
            # in whatever state they are in.
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start, initargs=(self._user_words, os.getpid()))
        try:
            return self._pool.submit(_tokens, texts)
        except BrokenProcessPool as exc:
            raise self._failed(exc) from None

    def result(self, future: Future) -> list[list[str]]:
        """The tokens of a submitted batch, or a QAError if the worker failed."""
        try:
            return future.result()
        except Exception as exc:
            raise self._failed(exc) from None

    def close(self) -> None:
        """Stop the worker (it is started again by the next `submit`)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _failed(self, exc: Exception) -> QAError:
        self.close()
        reason = ("it stopped unexpectedly" if isinstance(exc, BrokenProcessPool)
                  else f"{type(exc).__name__}: {exc}")
        return QAError(f"the keyword tokeniser worker failed ({reason}); the batches "
                       "committed before it are kept, run the command again to finish")
