"""The Milvus engine: chunks' vectors and BM25 postings in a Milvus collection, documents
and citations in a SQLite side store (`qa.index.milvus_side`). The only module that
imports pymilvus.

One collection row per chunk: `id` (our stable chunk id), `doc_id`, `terms` (our own
keyword tokens, each one ASCII word: `qa.index.milvus_query`), `sparse` (BM25 of
`terms`, computed by Milvus), `vector`, and `date`/`source`/`category` for filters.

Commit order, and what a reader sees meanwhile (Milvus has no multi-row transactions;
the side store's transaction is the commit point):

1. BEGIN IMMEDIATE on the side store (one writer at a time); rows a crashed commit left
   in Milvus (ids above the last one handed out) are deleted.
2. The new chunks get ids and rows in the side store (uncommitted) and are upserted into
   Milvus. A reader may already find them in Milvus but drops them: its snapshot of the
   side store does not hold them.
3. COMMIT: new snapshots see the new documents whole, and no longer the old chunks.
4. The old chunks are deleted from Milvus (`removed_chunks` remembers them until then,
   so a crash before this step is finished by the next commit). A snapshot opened before
   step 3 keeps seeing the old documents' text and citations, but its searches stop
   finding their chunks once this step has run: an answer may miss a document that was
   replaced while it was being answered; it never mixes two versions of one.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException
from pymilvus.exceptions import ConnectionConfigException

from qa.config import Config, MilvusConfig
from qa.errors import IndexDamagedError, IndexMissingError, QAError
from qa.index import keywords
from qa.index.engine import (
    Change,
    CommitResult,
    Filters,
    PutDocument,
    PutFile,
    RemoveDocument,
    RemoveFile,
)
from qa.index.manifest import check_manifest
from qa.index.milvus_query import ANALYZERS, and_, encode_terms, milvus_filter, sql_filter
from qa.index.milvus_side import SideWriter, create_side_store, document_frequencies
from qa.index.store import StoreReader, connect, transaction

logger = logging.getLogger(__name__)

# Rows per upsert or delete call: well under gRPC's message limit at 384 dimensions.
WRITE_BATCH = 512
_VARCHAR = 4096
_TERMS_CHARS = 65535


class MilvusSnapshot(StoreReader):
    """One side-store read transaction; Milvus hits outside it are dropped."""

    def __init__(self, db: sqlite3.Connection, engine: MilvusEngine):
        super().__init__(db)
        self._engine = engine

    def vector_search(self, vector: np.ndarray, k: int,
                      filters: Filters | None = None) -> list[tuple[int, float]]:
        if k <= 0:
            return []
        hits = self._engine.search([np.asarray(vector, dtype=np.float32).tolist()], "vector",
                                   k, milvus_filter(filters))
        return self.in_snapshot(hits)

    def keyword_search(self, tokens: list[str], k: int, among: list[int] | None = None,
                       filters: Filters | None = None) -> list[tuple[int, float]]:
        """BM25 over the chunks (or only those `among`, to score another list's hits)."""
        unique = list(dict.fromkeys(t for t in tokens if t.strip()))
        if not unique or k <= 0:
            return []
        expression = milvus_filter(filters)
        if among is not None:
            if not among:
                return []
            expression = and_(expression, f"id in [{', '.join(str(int(i)) for i in among)}]")
            k = min(k, len(among))
        hits = self._engine.search([encode_terms(unique, self._engine.analyzer)], "sparse", k,
                                   expression)
        # Milvus Lite reports BM25 as a negative distance, a server as a positive one: the
        # score is its size. Never threshold on it; fusion rescales it per question.
        return self.in_snapshot([(i, abs(s)) for i, s in hits])

    def vectors(self, ids: list[int]) -> np.ndarray:  # type: ignore[override]
        """The stored vectors of these chunks, in that order (zeros for a missing one)."""
        result = np.zeros((len(ids), self._engine.dimension), dtype=np.float32)
        if not ids:
            return result
        found = self._engine.fetch_vectors(ids)
        for row, chunk_id in enumerate(ids):
            if chunk_id in found:
                result[row] = found[chunk_id]
        return result

    def idf(self, tokens: list[str]) -> dict[str, float]:
        """Inverse document frequency of each token, from the side store's counts."""
        _, total = self.counts()
        return keywords.inverse_document_frequencies(
            total, document_frequencies(self.db, tokens), tokens)

    def matching_documents(self, filters: Filters) -> int:
        condition, params = sql_filter(filters)
        return int(self.db.execute(f"SELECT COUNT(*) FROM documents WHERE {condition}",
                                   params).fetchone()[0])

    def sources(self) -> list[tuple[str, int]]:
        """Each source with its number of documents, most documents first."""
        return [(row[0], int(row[1])) for row in self.db.execute(
            "SELECT source, COUNT(*) AS n FROM documents WHERE source IS NOT NULL"
            " AND source != '' GROUP BY source ORDER BY n DESC, source")]

    def date_range(self) -> tuple[str | None, str | None]:
        row = self.db.execute("SELECT MIN(date), MAX(date) FROM documents"
                              " WHERE date IS NOT NULL AND date != ''").fetchone()
        return row[0], row[1]


class MilvusEngine:
    """Milvus (Lite or a server) behind the Engine interface (see qa.index.engine)."""

    def __init__(self, config: Config, create_dimension: int | None = None,
                 fresh: bool = False):
        """Open the configured collection and side store; with `create_dimension`,
        create them if missing (`fresh`: drop what is there first)."""
        self.config = config
        self.settings: MilvusConfig = config.milvus
        self.name = self.settings.collection
        self.side_path = self.settings.side_store
        lite = Path(self.settings.uri) if "://" not in self.settings.uri else None
        if lite is not None and not lite.exists():
            if create_dimension is None:
                raise IndexMissingError(f"no Milvus Lite index at {lite}; run `qa index` or "
                                        "`qa migrate --to milvus`")
            lite.parent.mkdir(parents=True, exist_ok=True)
        self.client = _connect(self.settings)
        if create_dimension is not None:
            self._create(create_dimension, fresh)
        elif not (self.side_path.is_file() and self.client.has_collection(self.name)):
            self.client.close()
            raise IndexMissingError(
                f"no Milvus index (collection {self.name!r} at {self.settings.uri}, side store "
                f"{self.side_path}); run `qa index` or `qa migrate --to milvus`")
        self.client.load_collection(self.name)
        db = connect(self.side_path, readonly=True)
        try:
            reader = StoreReader(db)
            self._manifest = reader.meta("settings")
            self._generation = reader.generation()
        finally:
            db.close()
        check_manifest(self._manifest, config, dimension=None)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # -- creating ------------------------------------------------------------------

    def _create(self, dimension: int, fresh: bool) -> None:
        from qa.index.manifest import new_manifest

        exists = self.client.has_collection(self.name)
        # A side store without its collection (or the reverse) is not an index.
        if fresh or not (exists and self.side_path.is_file()):
            if exists:
                self.client.drop_collection(self.name)
            for suffix in ("", "-wal", "-shm"):
                self.side_path.with_name(self.side_path.name + suffix).unlink(missing_ok=True)
            create_side_store(self.side_path,
                              new_manifest(self.config, dimension)
                              | {"engine": "milvus", "analyzer": self.settings.analyzer})
            self._create_collection(dimension)

    def _create_collection(self, dimension: int) -> None:
        schema = self.client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=_VARCHAR)
        schema.add_field("terms", DataType.VARCHAR, max_length=_TERMS_CHARS,
                         enable_analyzer=True,
                         analyzer_params=ANALYZERS[self.settings.analyzer])
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        for name in ("date", "source", "category"):
            schema.add_field(name, DataType.VARCHAR, max_length=_VARCHAR)
        schema.add_function(Function(name="terms_bm25", function_type=FunctionType.BM25,
                                     input_field_names=["terms"], output_field_names=["sparse"]))
        index = self.client.prepare_index_params()
        index.add_index("vector", index_type=self.settings.index_type, metric_type="IP",
                        params=dict(self.settings.index_params))
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        self.client.create_collection(self.name, schema=schema, index_params=index,
                                      consistency_level="Strong")

    # -- reading -------------------------------------------------------------------

    @property
    def manifest(self) -> dict[str, Any]:
        return self._manifest

    @property
    def dimension(self) -> int:
        return int(self._manifest["dimension"])

    @property
    def analyzer(self) -> str:
        """How `terms` were written: fixed when the collection was made."""
        return str(self._manifest.get("analyzer", "tokens"))

    def search(self, data: list[Any], field: str, k: int,
               expression: str) -> list[tuple[int, float]]:
        """(id, distance) hits of one query on the vector or the BM25 field."""
        params = ({"metric_type": "IP", "params": dict(self.settings.search_params)}
                  if field == "vector" else {"metric_type": "BM25"})
        try:
            hits = self.client.search(self.name, data=data, anns_field=field, limit=k,
                                      filter=expression, search_params=params)
        except MilvusException as exc:
            raise QAError(f"Milvus search failed: {exc}") from None
        return [(int(hit["id"]), float(hit["distance"])) for hit in hits[0]]

    def fetch_vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        rows = self.client.query(self.name, ids=[int(i) for i in ids],
                                 output_fields=["vector"])
        return {int(r["id"]): np.asarray(r["vector"], dtype=np.float32) for r in rows}

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.side_path, readonly=True)
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @contextmanager
    def snapshot(self) -> Iterator[MilvusSnapshot]:
        """A consistent view for the block (nested on one thread: the same one)."""
        outer = getattr(self._local, "snapshot", None)
        if outer is not None:
            yield outer
            return
        db = self._connection()
        db.execute("BEGIN")
        self._local.snapshot = MilvusSnapshot(db, self)
        try:
            yield self._local.snapshot
        finally:
            self._local.snapshot = None
            db.execute("COMMIT")

    def status(self) -> dict[str, Any]:
        """Counts, generation and the time of the last change, for /api/health."""
        with self.snapshot() as snapshot:
            documents, chunks = snapshot.counts()
            generation = snapshot.generation()
            return {"documents": documents, "chunks": chunks, "generation": generation,
                    "changed_at": snapshot.meta("changed_at"),
                    "created_at": self._manifest.get("created_at"),
                    "vectors_generation": generation, "engine": "milvus"}

    def refresh(self) -> bool:
        """True if another writer committed since the last look (nothing is cached)."""
        with self.snapshot() as snapshot:
            generation = snapshot.generation()
        changed, self._generation = generation != self._generation, generation
        return changed

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self.client.close()

    # -- writing -------------------------------------------------------------------

    def commit(self, changes: list[Change]) -> CommitResult:
        """Apply changes as one side-store transaction (see the module's docstring)."""
        result = CommitResult(generation=None)
        if not changes:
            return result
        db = connect(self.side_path, readonly=False)
        try:
            writer = SideWriter(db)
            with transaction(db):
                self._delete_where(f"id > {writer.last_chunk_id()}")  # a crashed commit's
                rows: list[dict[str, Any]] = []
                for change in changes:
                    _apply(writer, change, result, rows, self.analyzer)
                # Chunks a later change of this batch replaced or removed stay out.
                stale = set(writer.pending_removals())
                rows = [row for row in rows if row["id"] not in stale]
                for start in range(0, len(rows), WRITE_BATCH):
                    self.client.upsert(self.name, rows[start:start + WRITE_BATCH])
                result.generation = writer.commit_generation()
            removed = writer.pending_removals()
            for start in range(0, len(removed), WRITE_BATCH):
                batch = removed[start:start + WRITE_BATCH]
                self.client.delete(self.name, ids=batch)
                with transaction(db):
                    writer.forget_removals(batch)
        except MilvusException as exc:
            raise QAError(f"Milvus refused the change: {exc}") from None
        finally:
            db.close()
        self.refresh()
        return result

    def _delete_where(self, expression: str) -> None:
        self.client.delete(self.name, filter=expression)

    def milvus_ids(self, up_to: int) -> set[int]:
        """Every chunk id in the collection (for `qa check`), read in windows of ids up to
        `up_to` and then everything above it."""
        ids: set[int] = set()
        window = 10_000
        for low in range(0, up_to + 1, window):
            ids.update(self._ids(f"id >= {low} and id < {low + window}"))
        ids.update(self._ids(f"id >= {(up_to // window + 1) * window}"))
        return ids

    def _ids(self, expression: str) -> set[int]:
        rows = self.client.query(self.name, filter=expression, output_fields=["id"],
                                 limit=16_384)
        return {int(r["id"]) for r in rows}


def _apply(writer: SideWriter, change: Change, result: CommitResult,
           rows: list[dict[str, Any]], analyzer: str) -> None:
    if isinstance(change, PutDocument):
        document = change.document
        ids = writer.put_document(document, change.chunks, change.vectors, change.tokens,
                                  change.origin)
        result.chunk_ids[document.doc_id] = ids
        for chunk_id, vector, tokens in zip(ids, change.vectors, change.tokens, strict=True):
            terms = encode_terms(tokens, analyzer)
            if len(terms) > _TERMS_CHARS:
                logger.warning("chunk %d of %s has too many keyword tokens; keeping the first",
                               chunk_id, document.doc_id)
                terms = terms[:_TERMS_CHARS].rsplit(" ", 1)[0]
            rows.append({
                "id": chunk_id, "doc_id": document.doc_id, "terms": terms,
                "vector": np.asarray(vector, dtype=np.float32).tolist(),
                "date": document.date or "", "source": (document.source or "")[:_VARCHAR],
                "category": (document.category or "")[:_VARCHAR],
            })
    elif isinstance(change, RemoveDocument):
        result.removed[change.doc_id] = writer.remove_document(change.doc_id) is not None
    elif isinstance(change, PutFile):
        writer.put_file(change.record)
    elif isinstance(change, RemoveFile):
        writer.remove_file(change.path)
    else:  # pragma: no cover
        raise TypeError(f"unknown change {change!r}")


def _connect(settings: MilvusConfig) -> MilvusClient:
    uri = settings.uri
    if "://" not in uri and not uri.endswith(".db"):
        raise QAError(f"milvus.uri {uri!r}: a Milvus Lite file must end in .db "
                      "(or give http://host:19530 for a server)")
    token = settings.token or os.environ.get("MILVUS_TOKEN", "")
    try:
        return MilvusClient(uri=uri, token=token) if token else MilvusClient(uri=uri)
    except ConnectionConfigException as exc:
        if "://" not in uri:
            raise IndexDamagedError(
                f"cannot open Milvus Lite at {uri} ({exc.message}); Milvus Lite serves one "
                "process at a time: stop the server (or send changes through its write API)"
            ) from None
        raise QAError(f"cannot connect to Milvus at {uri}: {exc.message}") from None
    except MilvusException as exc:
        raise QAError(f"cannot connect to Milvus at {uri}: {exc}") from None


def drop_collection(settings: MilvusConfig) -> None:
    """Drop the configured collection (a scratch one of `qa eval`)."""
    client = _connect(settings)
    try:
        if client.has_collection(settings.collection):
            client.drop_collection(settings.collection)
    finally:
        client.close()
