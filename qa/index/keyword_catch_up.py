"""Keeping the local engine's tantivy keyword index up with its store: which keyword
index a store uses, the catch-up itself, and a bulk writer's deferral of it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qa.config import Config
from qa.errors import IndexLockedError
from qa.index.store import StoreReader
from qa.index.tantivy_keywords import TantivyKeywords

logger = logging.getLogger(__name__)

# Inside `keywords_deferred` (a bulk writer: `qa index`, `qa add`, a rebuild) the tantivy
# keyword index is caught up once per this many commits and at the end, not after every
# commit: each catch-up is a tantivy commit (fsyncs, merges); a 30k-chunk build spent
# 38-65 s in 123 of them, 5-8 s in 7 (README, "Speed: keyword search at a million").
KEYWORD_CATCH_UP_COMMITS = 32


def keyword_index_for(config: Config, store_dir: Path,
                      reader: StoreReader) -> TantivyKeywords | None:
    """The keyword index the config chooses for a store, brought up to `reader`'s
    generation (None: the store's FTS5 table). The one place the backend is chosen."""
    if config.index.keyword_backend == "fts5":
        return None
    keyword_index = TantivyKeywords(store_dir)
    keep_keywords_up(keyword_index, reader)
    if keyword_index.generation() is None:
        # Another process is building it: answer from FTS5 meanwhile.
        logger.warning("the keyword index %s is not ready; using FTS5", keyword_index.path)
        return None
    return keyword_index


def keep_keywords_up(keyword_index: TantivyKeywords, reader: StoreReader,
                     wait_seconds: float = 30.0) -> None:
    """Catch the keyword index up with the store; on failure it stays behind (searches
    check its hits against the snapshot) and a later open, refresh or commit repairs it."""
    try:
        keyword_index.catch_up(reader, wait_seconds)
    except IndexLockedError:
        logger.info("the keyword index %s is being updated by another writer",
                    keyword_index.path)
    except (OSError, ValueError):
        logger.exception("could not update the keyword index %s", keyword_index.path)
    else:
        return
    keyword_index.reload()


class DeferredCatchUp:
    """Per thread: whether a bulk writer deferred the keyword catch-up
    (LocalEngine.keywords_deferred), and which of its commits catch up all the same."""

    def __init__(self) -> None:
        self._local = threading.local()

    def active(self) -> bool:
        """Whether this thread is inside a deferring block."""
        return getattr(self._local, "commits_deferred", None) is not None

    @contextmanager
    def deferring(self, every: int | None = None) -> Iterator[None]:
        """This thread's commits in the block catch up once every `every`
        (KEYWORD_CATCH_UP_COMMITS) commits."""
        every = KEYWORD_CATCH_UP_COMMITS if every is None else every
        self._local.commits_deferred, self._local.catch_up_every = 0, max(1, every)
        try:
            yield
        finally:
            self._local.commits_deferred = None

    def due(self) -> bool:
        """Whether this commit catches the keyword index up (always, unless deferred)."""
        if not self.active():
            return True
        self._local.commits_deferred += 1
        if self._local.commits_deferred < self._local.catch_up_every:
            return False
        self._local.commits_deferred = 0
        return True
