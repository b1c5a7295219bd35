"""The local engine: a SQLite store (the truth) and a FAISS index (a cache; a saved
approximate one is memory-mapped and shared between processes, qa.index.mapped_ivf).

Readers search a snapshot (qa.index.local_snapshot): a read transaction on their
thread's own connection, plus the FAISS index under a shared lock, which may lag the
store by the changes of the last moments. `refresh()` brings FAISS up to the store's
generation (or reopens the store a rebuild made live); the server calls it on a timer
and after its own writes. The store folder held open is qa.index.opened_store, the
FAISS cache files qa.index.vector_cache, the tantivy catch-up qa.index.keyword_catch_up.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qa.config import Config
from qa.errors import IndexDamagedError
from qa.index import vector_cache
from qa.index.engine import Change, CommitResult, PutDocument, apply_record_change
from qa.index.keyword_catch_up import DeferredCatchUp, keep_keywords_up
from qa.index.layout import IndexFolder
from qa.index.local_snapshot import LocalSnapshot
from qa.index.manifest import new_manifest, write_manifest
from qa.index.opened_store import OpenedStore, checked, open_store
from qa.index.store import STORE_FILE, StoreReader, StoreWriter, connect, create_store, transaction

logger = logging.getLogger(__name__)


class LocalEngine:
    """FAISS + SQLite behind the Engine interface (see qa.index.engine)."""

    def __init__(self, config: Config, index_dir: Path | None = None, *,
                 store_dir: Path | None = None, locked: bool = False):
        """Open the live store of `index_dir`, or `store_dir` (a rebuild's new store,
        whose writer lock the caller holds: `locked`)."""
        self.config = config
        self.folder = IndexFolder(index_dir or config.index_dir)
        self._pinned = store_dir
        self._locked = locked
        self._refresh_lock = threading.Lock()
        self._local = threading.local()
        self._deferred = DeferredCatchUp()
        self._state = open_store(self.config, store_dir or self.folder.require_store())
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def manifest(self) -> dict[str, Any]:
        return self._state.manifest

    @property
    def dimension(self) -> int:
        return int(self._state.manifest["dimension"])

    @property
    def store_dir(self) -> Path:
        return self._state.store_dir

    # -- reading -------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[LocalSnapshot]:
        """A consistent view of the index for the duration of the block (a snapshot
        opened inside another on the same thread shares it)."""
        outer = getattr(self._local, "snapshot", None)
        if outer is not None:
            yield outer
            return
        if self._watcher is None:
            self.refresh()
        state = self._state
        state.enter()
        try:
            try:
                db = state.connection()
            except IndexDamagedError:
                # A rebuild made another store live and removed this one before the
                # watcher switched: switch now.
                self.refresh()
                if self._state is state:
                    raise
                state.leave()
                state = self._state
                state.enter()
                db = state.connection()
            with state.lock.read():
                db.execute("BEGIN")
                catch_up = None
                if state.keyword_index is not None and self._deferred.active():
                    index = state.keyword_index
                    catch_up = lambda reader: keep_keywords_up(index, reader)  # noqa: E731
                self._local.snapshot = LocalSnapshot(db, state.vectors, state.keyword_index,
                                                     state.filter_ids, catch_up)
                try:
                    yield self._local.snapshot
                finally:
                    self._local.snapshot = None
                    db.execute("COMMIT")
        finally:
            state.leave()

    def status(self) -> dict[str, Any]:
        """Counts, generation and the time of the last change, for /api/health."""
        with self.snapshot() as snapshot:
            documents, chunks = snapshot.counts()
            return {
                "documents": documents,
                "chunks": chunks,
                "generation": snapshot.generation(),
                "changed_at": snapshot.meta("changed_at"),
                "created_at": self._state.manifest.get("created_at"),
                "vectors_generation": self._state.generation,
                "vector_index": self._state.vectors.kind,
            }

    # -- keeping up ----------------------------------------------------------------

    def refresh(self) -> bool:
        """Catch up with changes other writers committed; True if anything changed."""
        with self._refresh_lock:
            state = self._state
            store_dir = self._pinned or self.folder.require_store()
            if store_dir != state.store_dir:
                # A rebuild made another store live: open it fully, then switch.
                self._state = open_store(self.config, store_dir)
                state.retire()
                logger.info("switched to the rebuilt index %s", store_dir.name)
                return True
            if state.refresh_db is None:
                state.refresh_db = connect(state.store_dir / STORE_FILE, readonly=True)
            db = state.refresh_db
            reader = StoreReader(db)
            with transaction(db, immediate=False):
                generation = checked(reader.generation)
                keyword_index = state.keyword_index
                if (keyword_index is not None and keyword_index.held != generation
                        and not self._deferred.active()):
                    # Also when the store has not moved since: a catch-up another writer
                    # was still making at the last refresh is seen now.
                    keep_keywords_up(keyword_index, reader, wait_seconds=0)
                if generation == state.generation:
                    return False
                removed = reader.removed_since(state.generation)
                added = list(reader.vectors_since(state.generation))
            with state.lock.write():
                # A re-run refresh does not add twice: each id's vector is replaced.
                changed = vector_cache.apply_changes(state.vectors, removed, added)
                state.generation = generation
            state.unsaved += changed
            if not state.vectors.suits(len(state.vectors), self.config.index.ann_min_chunks):
                state.rebuild_vectors(self.config)
            return True

    def watch(self, interval: float = 0.25) -> None:
        """Refresh in a background thread every `interval` seconds (the server does)."""
        if self._watcher is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.refresh()
                    self._save_cache_if_far_behind()
                except Exception:  # keep serving the last good state; say why
                    logger.exception("could not refresh the index")

        self._watcher = threading.Thread(target=loop, name="index-refresh", daemon=True)
        self._watcher.start()

    def _save_cache_if_far_behind(self) -> None:
        """A server taking many writes saves the vector cache now and then, so that a
        restart does not read every vector written since the last `qa index`."""
        state = self._state
        if vector_cache.far_behind(state.unsaved, len(state.vectors)):
            state.unsaved = 0
            path = self.save_vector_cache()
            logger.info("saved the vector cache %s", path.name)

    def close(self) -> None:
        """Stop watching and close every connection."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        self._state.close()

    # -- writing -------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[None]:
        if self._locked:
            yield
        else:
            with self.folder.writer_lock():
                yield

    def commit(self, changes: list[Change]) -> CommitResult:
        """Apply changes in one transaction (one writer at a time); then refresh."""
        result = CommitResult(generation=None)
        if not changes:
            return result
        with self._writing():
            if not self._locked and self.folder.require_store() != self._state.store_dir:
                self.refresh()  # a rebuild went live since we opened: write to it
            db = connect(self._state.store_dir / STORE_FILE, readonly=False)
            try:
                writer = StoreWriter(db)
                with transaction(db):
                    for change in changes:
                        _apply_change(writer, change, result)
                    writer.prune_tombstones()
                    result.generation = writer.commit_generation()
                if self._state.keyword_index is not None and self._deferred.due():
                    # After the store's commit: a crash in between leaves the keyword
                    # index behind, which the next open or refresh repairs.
                    with transaction(db, immediate=False):
                        keep_keywords_up(self._state.keyword_index, writer)
            finally:
                db.close()
        self.refresh()
        return result

    @contextmanager
    def keywords_deferred(self, every: int | None = None) -> Iterator[None]:
        """For a bulk writer: this thread's commits in the block catch the keyword index
        up once every `every` commits (qa.index.keyword_catch_up.KEYWORD_CATCH_UP_COMMITS
        if None) and once when the block ends without an error, rather than after each
        commit. Other readers do not wait for that: every reader catches the index up
        itself before it searches (on open, and in `refresh`, which a watching server runs
        four times a second and an unwatched engine before each snapshot); this thread's
        own snapshots catch it up before a keyword search or an idf lookup (a bulk
        writer's reads are mostly lookups by id, which need none)."""
        if self._deferred.active():
            yield
            return
        with self._deferred.deferring(every):
            yield
        self.catch_up_keywords()

    def catch_up_keywords(self) -> None:
        """Bring the keyword index (tantivy) up to the store's generation now."""
        keyword_index = self._state.keyword_index
        if keyword_index is None:
            return
        db = connect(self._state.store_dir / STORE_FILE, readonly=True)
        try:
            with transaction(db, immediate=False):
                keep_keywords_up(keyword_index, StoreReader(db))
        finally:
            db.close()

    def save_vector_cache(self) -> Path:
        """Write the FAISS cache for the current generation and drop older ones (safe
        without the writer lock: files are written whole and named by generation)."""
        self.refresh()
        state = self._state
        state.unsaved = 0
        generation = state.generation
        with state.lock.read():
            path = vector_cache.write_cache(state.store_dir, generation, state.vectors)
        vector_cache.drop_other_caches(state.store_dir, path)
        if state.vectors.kind == "approximate":
            self._map_saved_cache(state, path, generation)
        return path

    def _map_saved_cache(self, state: OpenedStore, path: Path, generation: int) -> None:
        """Answer from the file just saved, memory-mapped: its pages are shared with the
        other processes that map it, and the changes held in memory beside the old one
        (now folded into it) are let go. Skipped if the index moved on meanwhile."""
        with self._refresh_lock:
            if self._state is not state or state.generation != generation:
                return
            mapped = vector_cache.map_cache(path, len(state.vectors))
            if mapped is not None:
                with state.lock.write():
                    state.vectors = mapped


def _apply_change(writer: StoreWriter, change: Change, result: CommitResult) -> None:
    if isinstance(change, PutDocument):
        result.chunk_ids[change.document.doc_id] = writer.put_document(
            change.document, change.chunks, change.vectors, change.tokens, change.origin)
    else:
        apply_record_change(writer, change, result)


def create_index(config: Config, index_dir: Path, dimension: int,
                 make_live: bool = True) -> Path:
    """A new, empty store folder with its manifest; live at once unless `make_live` is
    False (a rebuild makes it live when it is complete). Call with the writer lock held."""
    folder = IndexFolder(index_dir)
    store_dir = folder.new_store_folder()
    try:
        write_manifest(store_dir, new_manifest(config, dimension))
        create_store(store_dir / STORE_FILE, new_manifest(config, dimension))
        if make_live:
            folder.make_current(store_dir)
    except BaseException:
        shutil.rmtree(store_dir, ignore_errors=True)
        raise
    return store_dir
