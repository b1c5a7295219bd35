"""The Milvus engine: chunks' vectors and BM25 postings in a Milvus collection
(`qa.index.milvus_collection`), documents and citations in a SQLite side store
(`qa.index.milvus_side`), the live pair named by an alias (`qa.index.milvus_layout`);
commits in the order `qa.index.milvus_commit` describes.

A rebuild (`MilvusEngine.build`, then `go_live`) fills a new pair; an engine that has the
old pair open follows `replaced_by` to the new one at its next snapshot or commit.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.config import Config
from qa.errors import IndexDamagedError, IndexMismatchError, IndexMissingError, QAError
from qa.index.engine import (
    Change,
    CommitResult,
)
from qa.index.manifest import check_manifest, new_manifest
from qa.index.milvus_bm25 import has_statistics
from qa.index.milvus_collection import Collection, MilvusException, connect
from qa.index.milvus_commit import commit_changes
from qa.index.milvus_layout import (
    Target,
    drop,
    live_target,
    make_live,
    new_target,
    target_for,
    writer_lock,
)
from qa.index.milvus_side import create_side_store, replaced_by
from qa.index.milvus_snapshot import MilvusSnapshot
from qa.index.store import StoreReader
from qa.index.store import connect as connect_store

logger = logging.getLogger(__name__)

# Rebuilds an open engine follows in one go before it calls the index damaged.
_FOLLOW_LIMIT = 5


@dataclass(frozen=True)
class _Pair:
    """An opened collection and side store."""
    target: Target
    collection: Collection
    manifest: dict[str, Any]
    keeps_statistics: bool  # BM25 statistics in the side store (qa.index.milvus_bm25)

    @property
    def analyzer(self) -> str:
        """How `terms` were written: fixed when the collection was made."""
        return str(self.manifest.get("analyzer", "tokens"))


class MilvusEngine:
    """Milvus (Lite or a server) behind the Engine interface (see qa.index.engine)."""

    def __init__(self, config: Config, target: Target | None = None, client=None,
                 locked: bool = False):
        """Open the live index (or `target`, a pair being built by the caller, who holds
        the writer lock: `locked`)."""
        self.config = config
        self.settings = config.milvus
        lite = Path(self.settings.uri) if "://" not in self.settings.uri else None
        if client is None and lite is not None and not lite.exists():
            raise IndexMissingError(f"no Milvus Lite index at {lite}; run `qa index` or "
                                    "`qa migrate --to milvus`")
        self.client = client or connect(self.settings)
        self._lite = lite is not None
        self._locked = locked
        self._previous: Target | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        try:
            target = target or live_target(self.client, self.settings)
            if target is None or not target.side_path.is_file():
                raise IndexMissingError(
                    f"no Milvus index (collection {self.settings.collection!r} at "
                    f"{self.settings.uri}); run `qa index` or `qa migrate --to milvus`")
            self._pair = self._open(target)
        except BaseException:
            self.client.close()
            raise
        self._generation = self._read_generation()

    @staticmethod
    def client_for(settings) -> Any:
        """A client of the configured Milvus; a Milvus Lite file's folder is created."""
        if "://" not in settings.uri:
            Path(settings.uri).parent.mkdir(parents=True, exist_ok=True)
        return connect(settings)

    @classmethod
    def build(cls, config: Config, dimension: int, client=None) -> MilvusEngine:
        """A new, empty pair to fill, not live until `go_live`; the caller holds the
        writer lock. The live pair (if any) keeps serving meanwhile."""
        settings = config.milvus
        client = client or cls.client_for(settings)
        try:
            previous = live_target(client, settings)
            target = new_target(settings)
            create_side_store(target.side_path, new_manifest(config, dimension)
                              | {"engine": "milvus", "analyzer": settings.analyzer})
            Collection(client, target.collection, settings, dimension).create(
                settings.analyzer)
        except BaseException:
            client.close()
            raise
        engine = cls(config, target, client, locked=True)
        engine._previous = previous
        return engine

    def go_live(self) -> None:
        """Make this pair the live one (atomically) and drop the one it replaces; its rows
        are flushed first (one flush for the whole build, see `Collection.flush`)."""
        self._pair.collection.flush()
        make_live(self.client, self.settings, self._pair.target, self._previous)
        self._previous = None

    def discard(self) -> None:
        """Drop this pair (a build that failed); the live one is untouched."""
        self._close_connections()
        drop(self.client, self._pair.target)

    @contextmanager
    def previous(self) -> Iterator[tuple[MilvusSnapshot, bool] | None]:
        """A read snapshot of the pair this build replaces, and whether its vectors came
        from the configured model (None if there is no previous pair)."""
        old = self._previous
        if old is None or not old.side_path.is_file():
            yield None
            return
        pair = self._open(old, check=False)
        try:
            check_manifest(pair.manifest, self.config, dimension=None)
            same_model = True
        except IndexMismatchError:
            same_model = False
        db = connect_store(old.side_path, readonly=True)
        try:
            db.execute("BEGIN")
            yield MilvusSnapshot(db, pair.collection, pair.analyzer,
                                 pair.keeps_statistics), same_model
        finally:
            db.close()

    def _open(self, target: Target, check: bool = True) -> _Pair:
        db = connect_store(target.side_path, readonly=True)
        try:
            manifest = StoreReader(db).meta("settings")
            keeps_statistics = has_statistics(db)
        finally:
            db.close()
        if not keeps_statistics:
            logger.warning("the Milvus side store %s keeps no BM25 statistics (made before "
                           "they were kept): keyword scores are Milvus' own, wrong for "
                           "documents added since the build on Milvus Lite; `qa index "
                           "--rebuild` makes exact ones", target.side_path)
        if check:
            check_manifest(manifest, self.config, dimension=None)
        collection = Collection(self.client, target.collection, self.settings,
                                int(manifest["dimension"]))
        collection.load()
        return _Pair(target, collection, manifest, keeps_statistics)

    def _follow(self, successor: str | None) -> None:
        """Switch to the pair a rebuild made live (`successor`, or whatever the alias
        names now)."""
        with self._lock:
            target = (target_for(self.settings, successor) if successor
                      else live_target(self.client, self.settings))
            if target is None:
                raise IndexMissingError(f"the Milvus index {self.settings.collection!r} is "
                                        "gone; run `qa index`")
            if target != self._pair.target:
                logger.info("following the rebuilt Milvus index to %s", target.collection)
                self._pair = self._open(target)

    # -- reading -------------------------------------------------------------------

    @property
    def manifest(self) -> dict[str, Any]:
        return self._pair.manifest

    @property
    def dimension(self) -> int:
        return self._pair.collection.dimension

    @property
    def analyzer(self) -> str:
        return self._pair.analyzer

    @property
    def name(self) -> str:
        """The real name of the collection in use (not the alias)."""
        return self._pair.collection.name

    @property
    def side_path(self) -> Path:
        return self._pair.target.side_path

    def milvus_ids(self, up_to: int) -> set[int]:
        return self._pair.collection.ids(up_to)

    def _connection(self, path: Path) -> sqlite3.Connection:
        opened = getattr(self._local, "dbs", None)
        if opened is None:
            opened = self._local.dbs = {}
        if path not in opened:
            opened[path] = connect_store(path, readonly=True)
            with self._lock:
                self._connections.append(opened[path])
        return opened[path]

    @contextmanager
    def snapshot(self) -> Iterator[MilvusSnapshot]:
        """A consistent view for the block (nested on one thread: the same one)."""
        outer = getattr(self._local, "snapshot", None)
        if outer is not None:
            yield outer
            return
        for _ in range(_FOLLOW_LIMIT):
            pair = self._pair
            if not pair.target.side_path.is_file():
                self._follow(None)  # the old pair was dropped before we looked
                continue
            db = self._connection(pair.target.side_path)
            db.execute("BEGIN")
            successor = replaced_by(db)
            if successor is None:
                break
            db.execute("COMMIT")
            self._follow(successor)
        else:
            raise IndexDamagedError(f"the Milvus index {self.settings.collection!r} keeps "
                                    "changing under this reader; try again")
        self._local.snapshot = MilvusSnapshot(db, pair.collection, pair.analyzer,
                                              pair.keeps_statistics)
        try:
            yield self._local.snapshot
        finally:
            self._local.snapshot = None
            db.execute("COMMIT")

    def _read_generation(self) -> int:
        with self.snapshot() as snapshot:
            return snapshot.generation()

    def status(self) -> dict[str, Any]:
        """Counts, generation and the time of the last change, for /api/health."""
        with self.snapshot() as snapshot:
            documents, chunks = snapshot.counts()
            generation = snapshot.generation()
            return {"documents": documents, "chunks": chunks, "generation": generation,
                    "changed_at": snapshot.meta("changed_at"),
                    "created_at": self.manifest.get("created_at"),
                    "vectors_generation": generation, "engine": "milvus"}

    def refresh(self) -> bool:
        """True if another writer committed (or a rebuild went live) since the last look
        (nothing is cached)."""
        pair = self._pair
        generation = self._read_generation()
        changed = generation != self._generation or pair is not self._pair
        self._generation = generation
        return changed

    def _close_connections(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

    def close(self) -> None:
        self._close_connections()
        self.client.close()

    # -- writing -------------------------------------------------------------------

    def commit(self, changes: list[Change]) -> CommitResult:
        """Apply changes as one side-store transaction (see the module's docstring)."""
        result = CommitResult(generation=None)
        if not changes:
            return result
        with nullcontext() if self._locked else writer_lock(self.settings):
            self.refresh()  # a rebuild went live since we looked: write to it
            pair = self._pair
            db = connect_store(pair.target.side_path, readonly=False)
            try:
                commit_changes(db, pair.collection, pair.analyzer, changes, result)
            except MilvusException as exc:
                raise QAError(f"Milvus refused the change: {exc}") from None
            finally:
                db.close()
            if not self._locked and self._lite:
                # Milvus Lite did not seal rows by itself here; a build flushes once in go_live.
                pair.collection.flush()
        self.refresh()
        return result
