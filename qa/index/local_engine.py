"""The local engine: a SQLite store (the truth) and a FAISS index (a cache; a saved
approximate one is memory-mapped and shared between processes, qa.index.mapped_ivf).

Readers search a snapshot: a read transaction on their thread's own connection,
plus the FAISS index under a shared lock. FAISS may lag the store by the changes
of the last moments; its hits are checked against the snapshot, and any score it
lacks is computed from the vectors in the store, so an answer never mixes two
versions of a document. `refresh()` brings FAISS up to the store's generation
(or reopens the store a rebuild made live); the server calls it on a timer and
after its own writes.
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from qa.config import Config
from qa.errors import IndexDamagedError, IndexLockedError
from qa.filters import Filters
from qa.index.engine import (
    Change,
    CommitResult,
    PutDocument,
    apply_record_change,
)
from qa.index.filter_ids import FilterIds
from qa.index.layout import IndexFolder
from qa.index.manifest import check_manifest, new_manifest, read_manifest, write_manifest
from qa.index.rwlock import ReadWriteLock
from qa.index.store import (
    STORE_FILE,
    StoredChunk,
    StoreReader,
    StoreWriter,
    connect,
    create_store,
    transaction,
)
from qa.index.tantivy_keywords import TantivyKeywords
from qa.index.vectors import VectorIndex
from qa.index.verify import verify_store

logger = logging.getLogger(__name__)

_CACHE_NAME = re.compile(r"^vectors-(\d+)\.faiss$")
# A filter keeping up to this many chunks is searched exactly from the stored vectors;
# a broader one by FAISS restricted to the chunks it keeps.
EXACT_FILTERED_SEARCH = 4096
# A watching server saves the vector cache once it is this many chunks (or 1%) behind.
UNSAVED_CHANGES = 2000
# Inside `keywords_deferred` (a bulk writer: `qa index`, `qa add`, a rebuild) the tantivy
# keyword index is caught up once per this many commits and at the end, not after every
# commit: each catch-up is a tantivy commit (fsyncs, merges); a 30k-chunk build spent
# 38-65 s in 123 of them, 5-8 s in 7 (README, "Speed: keyword search at a million").
KEYWORD_CATCH_UP_COMMITS = 32


class LocalSnapshot(StoreReader):
    """One consistent view: the store's read transaction and the FAISS index."""

    def __init__(self, db: sqlite3.Connection, vectors: VectorIndex,
                 keyword_index: TantivyKeywords | None = None,
                 filter_ids: FilterIds | None = None,
                 catch_up: Callable[[StoreReader], None] | None = None):
        super().__init__(db, keyword_index)
        self._faiss = vectors
        # Shared by the snapshots of this store (qa.index.filter_ids).
        self._filter_ids = filter_ids
        # A bulk writer's own snapshot: the keyword index it left behind is caught up
        # before a keyword search or idf lookup (LocalEngine.keywords_deferred).
        self._catch_up = catch_up
        # Each token's chunk count, once per snapshot: a question looks its tokens up
        # for their idf and again in each of its two keyword searches' rescoring.
        self._frequencies: dict[str, int] = {}
        # The chunks read in this snapshot: a question reads its best keyword hit, its
        # best few and then all its candidates.
        self._chunks: dict[int, StoredChunk] = {}

    def _keywords_current(self) -> None:
        held = getattr(self.keyword_index, "held", None)
        if self._catch_up is not None and held != self.generation():
            self._catch_up(self)
        self._catch_up = None

    def keyword_search(self, tokens: list[str], k: int, among: list[int] | None = None,
                       filters: Filters | None = None) -> list[tuple[int, float]]:
        self._keywords_current()
        return super().keyword_search(tokens, k, among, filters)

    def idf(self, tokens: list[str]) -> dict[str, float]:
        self._keywords_current()
        return super().idf(tokens)

    def document_frequencies(self, tokens: list[str]) -> dict[str, int]:
        kept = self._frequencies
        missing = [t for t in dict.fromkeys(tokens) if t not in kept]
        if missing:
            found = super().document_frequencies(missing)
            kept.update({t: found.get(t, 0) for t in missing})
        return {t: kept[t] for t in dict.fromkeys(tokens) if kept[t]}

    def chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        kept = self._chunks
        missing = [i for i in ids if i not in kept]
        if missing:
            kept.update(super().chunks(missing))
        return {i: kept[i] for i in ids if i in kept}

    def chunk_ids_matching(self, filters: Filters) -> list[int]:
        if self._filter_ids is not None and filters not in self._matching:
            listing = super().chunk_ids_matching
            self._matching[filters] = self._filter_ids.get(
                filters, self.generation(), lambda: listing(filters))
        return super().chunk_ids_matching(filters)

    def vector_search(self, vector: np.ndarray, k: int,
                      filters: Filters | None = None) -> list[tuple[int, float]]:
        if filters is None or filters.is_empty():
            hits = self._faiss.search(vector, k)
        else:
            allowed = self.chunk_ids_matching(filters)
            if len(allowed) <= EXACT_FILTERED_SEARCH:
                # Few chunks: score them all from the stored vectors (exact, and cheaper
                # than a pass over the whole index).
                scores = self.vectors(allowed) @ np.asarray(vector, dtype=np.float32)
                best = np.argsort(-scores)[:k]
                return [(allowed[i], float(scores[i])) for i in best]
            hits = self._faiss.search(vector, k, allowed=allowed)
        # Hits of chunks removed since FAISS was last refreshed are dropped.
        hits = self.in_snapshot(hits)
        if hits and not self._faiss.exact_scores:
            # An approximate index found them; the store's vectors score them exactly.
            ids = [chunk_id for chunk_id, _ in hits]
            scores = self.vectors(ids) @ np.asarray(vector, dtype=np.float32)
            hits = sorted(zip(ids, scores.tolist(), strict=True), key=lambda hit: -hit[1])
        return hits

    def vectors(self, ids: list[int]) -> np.ndarray:  # type: ignore[override]
        return super().vectors(ids, self._faiss.dimension)


class _State:
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
        self._state = self._open(store_dir or self.folder.require_store())
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()

    # -- opening -------------------------------------------------------------------

    def _open(self, store_dir: Path) -> _State:
        manifest = read_manifest(store_dir)
        check_manifest(manifest, self.config, dimension=None)
        dimension = int(manifest["dimension"])
        db = connect(store_dir / STORE_FILE, readonly=True)
        try:
            verify_store(db, store_dir / STORE_FILE, manifest)
            reader = StoreReader(db)
            with transaction(db, immediate=False):
                generation = _checked(reader.generation)
                vectors, cached_generation = _load_cache(store_dir, generation, dimension)
                if vectors is None:
                    vectors = _build_vectors(reader, dimension, self.config)
                    behind = len(vectors)
                else:
                    behind = _apply(vectors, reader, cached_generation)
                    if not vectors.suits(len(vectors), self.config.index.ann_min_chunks):
                        vectors = _build_vectors(reader, dimension, self.config)
                        behind = len(vectors)
                keyword_index = _keyword_index(self.config, store_dir, reader)
        except sqlite3.DatabaseError as exc:
            raise IndexDamagedError(f"the index store {store_dir / STORE_FILE} is unreadable "
                                    f"({exc}); run `qa check` to see what is wrong") from None
        finally:
            db.close()
        if vectors.dimension != dimension:
            raise IndexDamagedError(f"the vectors in {store_dir} are not {dimension}-"
                                    "dimensional; run `qa index --rebuild`")
        state = _State(store_dir, manifest, vectors, generation, keyword_index)
        state.unsaved = behind
        return state

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
                if state.keyword_index is not None and self._keywords_deferred():
                    index = state.keyword_index
                    catch_up = lambda reader: _keep_keywords_up(index, reader)  # noqa: E731
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
                self._state = self._open(store_dir)
                state.retire()
                logger.info("switched to the rebuilt index %s", store_dir.name)
                return True
            if state.refresh_db is None:
                state.refresh_db = connect(state.store_dir / STORE_FILE, readonly=True)
            db = state.refresh_db
            reader = StoreReader(db)
            with transaction(db, immediate=False):
                generation = _checked(reader.generation)
                keyword_index = state.keyword_index
                if (keyword_index is not None and keyword_index.held != generation
                        and not self._keywords_deferred()):
                    # Also when the store has not moved since: a catch-up another writer
                    # was still making at the last refresh is seen now.
                    _keep_keywords_up(keyword_index, reader, wait_seconds=0)
                if generation == state.generation:
                    return False
                removed = reader.removed_since(state.generation)
                added = list(reader.vectors_since(state.generation))
            with state.lock.write():
                state.vectors.remove(removed)
                for ids, vectors in added:
                    state.vectors.remove(ids)  # a re-run refresh must not add twice
                    state.vectors.add(ids, vectors)
                state.generation = generation
            state.unsaved += len(removed) + sum(len(ids) for ids, _ in added)
            if not state.vectors.suits(len(state.vectors), self.config.index.ann_min_chunks):
                self._rebuild_vectors(state)
            return True

    def _rebuild_vectors(self, state: _State) -> None:
        """The store crossed a size where another kind of vector index suits it: build
        that one from the store while readers keep using the old one, then switch."""
        db = state.refresh_db
        assert db is not None
        with transaction(db, immediate=False):
            reader = StoreReader(db)
            generation = _checked(reader.generation)
            vectors = _build_vectors(reader, state.vectors.dimension, self.config)
        with state.lock.write():
            state.vectors, state.generation = vectors, generation
        state.unsaved += len(vectors)
        logger.info("rebuilt the vector index as %s for %d chunks", vectors.kind, len(vectors))

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
        if state.unsaved >= max(UNSAVED_CHANGES, len(state.vectors) // 100):
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
                if self._state.keyword_index is not None and self._keywords_due():
                    # After the store's commit: a crash in between leaves the keyword
                    # index behind, which the next open or refresh repairs.
                    with transaction(db, immediate=False):
                        _keep_keywords_up(self._state.keyword_index, writer)
            finally:
                db.close()
        self.refresh()
        return result

    @contextmanager
    def keywords_deferred(self, every: int | None = None) -> Iterator[None]:
        """For a bulk writer: this thread's commits in the block catch the keyword index
        up once every `every` (KEYWORD_CATCH_UP_COMMITS) commits and once when the block
        ends without an error, rather than after each commit. Other readers do not wait
        for that: every reader catches the index up itself before it searches (on open,
        and in `refresh`, which a watching server runs four times a second and an
        unwatched engine before each snapshot); this thread's own snapshots catch it up
        before a keyword search or an idf lookup (a bulk writer's reads are mostly
        lookups by id, which need none)."""
        if self._keywords_deferred():
            yield
            return
        every = KEYWORD_CATCH_UP_COMMITS if every is None else every
        self._local.commits_deferred, self._local.catch_up_every = 0, max(1, every)
        try:
            yield
        finally:
            self._local.commits_deferred = None
        self.catch_up_keywords()

    def _keywords_deferred(self) -> bool:
        return getattr(self._local, "commits_deferred", None) is not None

    def _keywords_due(self) -> bool:
        """Whether this commit catches the keyword index up (always, unless deferred)."""
        if not self._keywords_deferred():
            return True
        self._local.commits_deferred += 1
        if self._local.commits_deferred < self._local.catch_up_every:
            return False
        self._local.commits_deferred = 0
        return True

    def catch_up_keywords(self) -> None:
        """Bring the keyword index (tantivy) up to the store's generation now."""
        keyword_index = self._state.keyword_index
        if keyword_index is None:
            return
        db = connect(self._state.store_dir / STORE_FILE, readonly=True)
        try:
            with transaction(db, immediate=False):
                _keep_keywords_up(keyword_index, StoreReader(db))
        finally:
            db.close()

    def save_vector_cache(self) -> Path:
        """Write the FAISS cache for the current generation and drop older ones (safe
        without the writer lock: files are written whole and named by generation)."""
        self.refresh()
        state = self._state
        state.unsaved = 0
        generation = state.generation
        path = state.store_dir / f"vectors-{generation}.faiss"
        with state.lock.read():
            if not path.exists():
                state.vectors.save(path)
        for other in state.store_dir.glob("vectors-*.faiss"):
            if other != path:
                other.unlink(missing_ok=True)
        if state.vectors.kind == "approximate":
            self._map_saved_cache(state, path, generation)
        return path

    def _map_saved_cache(self, state: _State, path: Path, generation: int) -> None:
        """Answer from the file just saved, memory-mapped: its pages are shared with the
        other processes that map it, and the changes held in memory beside the old one
        (now folded into it) are let go. Skipped if the index moved on meanwhile."""
        with self._refresh_lock:
            if self._state is not state or state.generation != generation:
                return
            try:
                mapped = VectorIndex.load(path)
            except (ValueError, OSError) as exc:
                logger.warning("could not map the vector cache %s (%s)", path.name, exc)
                return
            if len(mapped) != len(state.vectors):
                return  # another writer's file for this generation, if ever it differs
            with state.lock.write():
                state.vectors = mapped


def _apply_change(writer: StoreWriter, change: Change, result: CommitResult) -> None:
    if isinstance(change, PutDocument):
        result.chunk_ids[change.document.doc_id] = writer.put_document(
            change.document, change.chunks, change.vectors, change.tokens, change.origin)
    else:
        apply_record_change(writer, change, result)


def _keyword_index(config: Config, store_dir: Path,
                   reader: StoreReader) -> TantivyKeywords | None:
    """The keyword index the config chooses for a store, brought up to `reader`'s
    generation (None: the store's FTS5 table). The one place the backend is chosen."""
    if config.index.keyword_backend == "fts5":
        return None
    keyword_index = TantivyKeywords(store_dir)
    _keep_keywords_up(keyword_index, reader)
    if keyword_index.generation() is None:
        # Another process is building it: answer from FTS5 meanwhile.
        logger.warning("the keyword index %s is not ready; using FTS5", keyword_index.path)
        return None
    return keyword_index


def _keep_keywords_up(keyword_index: TantivyKeywords, reader: StoreReader,
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


def _checked(read):
    try:
        return read()
    except sqlite3.DatabaseError as exc:
        raise IndexDamagedError(f"the index store is unreadable ({exc}); "
                                "run `qa check` to see what is wrong") from None


def _load_cache(store_dir: Path, generation: int,
                dimension: int) -> tuple[VectorIndex | None, int]:
    """The newest readable FAISS cache at or below `generation`, with its generation."""
    candidates = []
    for path in store_dir.glob("vectors-*.faiss"):
        match = _CACHE_NAME.match(path.name)
        if match and int(match.group(1)) <= generation:
            candidates.append((int(match.group(1)), path))
    for cached, path in sorted(candidates, reverse=True):
        try:
            vectors = VectorIndex.load(path)
        except (ValueError, OSError) as exc:
            logger.warning("ignoring the vector cache %s (%s); rebuilding it from the store",
                           path.name, exc)
            continue
        if vectors.dimension == dimension:
            return vectors, cached
    return None, 0


def _build_vectors(reader: StoreReader, dimension: int, config: Config) -> VectorIndex:
    """A vector index of the kind suited to the store's size, from its vectors."""
    _, chunks = reader.counts()
    return VectorIndex.build(dimension, chunks, lambda: reader.vectors_since(0),
                             config.index.ann_min_chunks)


def _apply(vectors: VectorIndex, reader: StoreReader, since: int) -> int:
    """Bring `vectors` from generation `since` to the reader's; returns chunks changed."""
    removed = reader.removed_since(since)
    vectors.remove(removed)
    changed = len(removed)
    for ids, batch in reader.vectors_since(since):
        vectors.remove(ids)
        vectors.add(ids, batch)
        changed += len(ids)
    return changed


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
