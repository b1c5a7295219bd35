"""One store folder as the local engine holds it open: its manifest, its vector index
(a cache of the store's vectors, qa.index.vector_cache), its keyword index and the
reader connections of its snapshots. A rebuild that goes live replaces the engine's
opened store; the old one closes once its last snapshot ends.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from qa.config import Config
from qa.errors import IndexDamagedError
from qa.index.filter_ids import FilterIds
from qa.index.keyword_catch_up import keyword_index_for
from qa.index.manifest import check_manifest, read_manifest
from qa.index.rwlock import ReadWriteLock
from qa.index.store import STORE_FILE, StoreReader, connect, transaction
from qa.index.tantivy_keywords import TantivyKeywords
from qa.index.vector_cache import build_vectors, open_vectors
from qa.index.vectors import VectorIndex
from qa.index.verify import verify_store

logger = logging.getLogger(__name__)

T = TypeVar("T")


def open_store(config: Config, store_dir: Path) -> OpenedStore:
    """Open a store folder: check its manifest and store, and bring its vector and
    keyword indexes up to the store's generation."""
    manifest = read_manifest(store_dir)
    check_manifest(manifest, config, dimension=None)
    dimension = int(manifest["dimension"])
    db = connect(store_dir / STORE_FILE, readonly=True)
    try:
        verify_store(db, store_dir / STORE_FILE, manifest)
        reader = StoreReader(db)
        with transaction(db, immediate=False):
            generation = checked(reader.generation)
            vectors, behind = open_vectors(store_dir, reader, generation, dimension, config)
            keyword_index = keyword_index_for(config, store_dir, reader)
    except sqlite3.DatabaseError as exc:
        raise IndexDamagedError(f"the index store {store_dir / STORE_FILE} is unreadable "
                                f"({exc}); run `qa check` to see what is wrong") from None
    finally:
        db.close()
    if vectors.dimension != dimension:
        raise IndexDamagedError(f"the vectors in {store_dir} are not {dimension}-"
                                "dimensional; run `qa index --rebuild`")
    state = OpenedStore(store_dir, manifest, vectors, generation, keyword_index)
    state.unsaved = behind
    return state


def checked(read: Callable[[], T]) -> T:
    """`read()`, with a damaged store reported as IndexDamagedError."""
    try:
        return read()
    except sqlite3.DatabaseError as exc:
        raise IndexDamagedError(f"the index store is unreadable ({exc}); "
                                "run `qa check` to see what is wrong") from None


class OpenedStore:
    """One opened store folder: its manifest, FAISS cache and reader connections."""

    def __init__(self, store_dir: Path, manifest: dict[str, Any], vectors: VectorIndex,
                 generation: int, keyword_index: TantivyKeywords | None = None):
        self.store_dir = store_dir
        self.manifest = manifest
        self.vectors = vectors
        # None: the store's own FTS5 table.
        self.keyword_index = keyword_index
        self.generation = generation
        self.lock = ReadWriteLock()
        self.filter_ids = FilterIds()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # Used only under the engine's refresh lock.
        self.refresh_db: sqlite3.Connection | None = None
        # Chunks changed since the vector cache file was written.
        self.unsaved = 0
        # Snapshots in progress; a state a rebuild replaced closes when the last one ends.
        self._readers = 0
        self._retired = False

    def rebuild_vectors(self, config: Config) -> None:
        """The store crossed a size where another kind of vector index suits it: build
        that one from the store while readers keep using the old one, then switch (under
        the engine's refresh lock)."""
        db = self.refresh_db
        assert db is not None
        with transaction(db, immediate=False):
            reader = StoreReader(db)
            generation = checked(reader.generation)
            vectors = build_vectors(reader, self.vectors.dimension, config)
        with self.lock.write():
            self.vectors, self.generation = vectors, generation
        self.unsaved += len(vectors)
        logger.info("rebuilt the vector index as %s for %d chunks", vectors.kind, len(vectors))

    def enter(self) -> None:
        with self._connections_lock:
            self._readers += 1

    def leave(self) -> None:
        with self._connections_lock:
            self._readers -= 1
            last = self._retired and not self._readers
        if last:
            self.close()

    def retire(self) -> None:
        """No new snapshots will use this state; close it once the current ones end."""
        with self._connections_lock:
            self._retired = True
            idle = not self._readers
        if idle:
            self.close()

    def connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.store_dir / STORE_FILE, readonly=True)
            self._local.db = db
            with self._connections_lock:
                self._connections.append(db)
        return db

    def close(self) -> None:
        with self._connections_lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
            if self.refresh_db is not None:
                self.refresh_db.close()
                self.refresh_db = None
