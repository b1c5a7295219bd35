"""The SQLite store: the source of truth of an index.

One file (WAL mode) holds the documents with their clean text, the chunks with
stable ids, each chunk's vector, the FTS5 keyword index, the corpus files each
document came from, and a generation counter. A document and everything derived
from it change in one transaction that also moves the generation, so a reader
(whose read transaction is a snapshot) sees a document whole or not at all. The
FAISS file beside it is only a cache of the vectors, brought up to date from
`chunks.generation` and `removed_chunks` when the generation moves.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.errors import DocumentNotFoundError, IndexDamagedError
from qa.filters import Filters
from qa.index import keyword_rescore, keywords
from qa.ingest.chunker import Chunk
from qa.ingest.document import Block, Document

STORE_FILE = "chunks.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    origin TEXT NOT NULL,
    title TEXT, date TEXT, source TEXT, url TEXT, category TEXT,
    tags TEXT NOT NULL,
    blocks TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    generation INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    -- any other Document fields, as JSON, so that the store keeps up with the loader
    extra TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_origin ON documents (origin);
CREATE INDEX IF NOT EXISTS documents_source ON documents (source, date);
CREATE INDEX IF NOT EXISTS documents_date ON documents (date);
CREATE INDEX IF NOT EXISTS documents_category ON documents (category);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    section TEXT,
    paragraph INTEGER NOT NULL,
    paragraph_end INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    UNIQUE (doc_id, ordinal)
);
CREATE INDEX IF NOT EXISTS chunks_generation ON chunks (generation);
CREATE TABLE IF NOT EXISTS vectors (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    vector BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS removed_chunks (
    chunk_id INTEGER PRIMARY KEY, generation INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS removed_generation ON removed_chunks (generation);
"""

# Tombstones (`removed_chunks`: each removed chunk id with the generation that removed
# it) let the indexes derived from the store (the FAISS cache, the tantivy keyword index)
# catch up by difference. Those of the last TOMBSTONE_GENERATIONS generations are kept,
# older ones pruned as the local engine commits; `meta.tombstones_pruned_through` records
# how far. A reader behind that (it would have missed that many commits; a watching
# server refreshes four times a second, every open catches up) is given every chunk id
# the store ever handed out and no longer holds instead (`removed_since`): more than it
# needs, and removing an id it does not hold is harmless.
TOMBSTONE_GENERATIONS = 1000
PRUNED_THROUGH = "tombstones_pruned_through"


@dataclass(frozen=True)
class KeywordRow:
    """A chunk's keyword tokens (whitespace-joined) and its document's filter fields."""

    chunk_id: int
    terms: str
    doc_id: str
    source: str | None
    category: str | None
    date: str | None


class KeywordIndex(Protocol):
    """BM25 over the chunks' keyword tokens: FTS5 in the store, or tantivy beside it."""

    may_lag: bool
    takes_filters: bool
    scores_like_fts5: bool

    def search(self, tokens: list[str], k: int, among: list[int] | None = None,
               allowed: set[int] | None = None,
               filters: Filters | None = None) -> list[tuple[int, float]]: ...
    def document_frequencies(self, tokens: list[str]) -> dict[str, int]: ...


API_ORIGIN = "api"
"""The origin of documents sent through the write API (no file behind them)."""


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the retriever needs it: the passage and its full citation."""

    id: int
    doc_id: str
    ordinal: int
    text: str
    section: str | None
    paragraph: int
    paragraph_end: int
    char_start: int
    char_end: int
    title: str | None
    date: str | None
    source: str | None
    url: str | None


@dataclass(frozen=True)
class FileRecord:
    """What the store knows of a corpus file, to tell whether it changed."""

    path: str
    size: int
    mtime_ns: int
    sha256: str


def content_hash(document: Document) -> str:
    """A hash of everything loaded from a document, to tell whether it changed."""
    payload = json.dumps(asdict(document), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def connect(path: Path, readonly: bool) -> sqlite3.Connection:
    """A connection to a store file; a reader never creates or changes the file."""
    if readonly and not path.is_file():
        raise IndexDamagedError(f"the index store {path} is missing; run `qa index --rebuild`")
    uri = f"file:{path}?mode={'ro' if readonly else 'rwc'}"
    try:
        db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None,
                             timeout=30.0)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            db.execute("PRAGMA journal_mode = WAL")
            # WAL with synchronous=FULL: a commit that returned survives a power cut.
            db.execute("PRAGMA synchronous = FULL")
    except sqlite3.DatabaseError as exc:
        raise IndexDamagedError(
            f"the index store {path} is unreadable ({exc}); run `qa index --rebuild`"
        ) from None
    return db


def create_store(path: Path, settings: dict[str, Any]) -> None:
    """Create an empty store file recording the settings its index was built with."""
    db = connect(path, readonly=False)
    try:
        db.executescript(SCHEMA + keywords.SCHEMA)
        with transaction(db):
            for key, value in (("settings", settings), ("generation", 0), ("documents", 0),
                               ("chunks", 0), ("changed_at", _now())):
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           (key, json.dumps(value, ensure_ascii=False)))
    finally:
        db.close()


class transaction:  # noqa: N801 - used like a function: `with transaction(db):`
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection, immediate: bool = True):
        self.db = db
        self.begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute(self.begin)
        return self.db

    def __exit__(self, kind, value, traceback) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def filter_sql(filters: Filters) -> tuple[str, list[object]]:
    """A WHERE clause over `documents d` for the filters (dates compare as ISO text)."""
    clauses: list[str] = []
    params: list[object] = []
    for column, values in (("d.source", filters.sources), ("d.doc_id", filters.doc_ids),
                           ("d.category", filters.categories)):
        if values:
            clauses.append(f"{column} IN ({','.join('?' * len(values))})")
            params.extend(values)
    if filters.date_from:
        clauses.append("d.date >= ?")
        params.append(filters.date_from)
    if filters.date_to:
        clauses.append("d.date <= ?")
        params.append(filters.date_to)
    return (" AND ".join(clauses) or "1"), params


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class StoreReader:
    """Read queries over one connection; run them inside one read transaction for a
    consistent snapshot."""

    def __init__(self, db: sqlite3.Connection, keyword_index: KeywordIndex | None = None):
        self.db = db
        # FTS5 in this store unless the engine chose another keyword index.
        self.keyword_index: KeywordIndex = keyword_index or keywords.Fts5Keywords(db)
        # Chunk ids per filter: both searches of a filtered question need them.
        self._matching: dict[Filters, list[int]] = {}

    def meta(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise IndexDamagedError(f"the index store lacks its {key!r} record; "
                                    "run `qa check --repair` or `qa index --rebuild`")
        return json.loads(row[0])

    def generation(self) -> int:
        return int(self.meta("generation"))

    def counts(self) -> tuple[int, int]:
        """(documents, chunks), kept in `meta` so that no question counts rows."""
        return int(self.meta("documents")), int(self.meta("chunks"))

    def chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        """The chunks with these ids, with their documents' citation fields."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            "SELECT c.id, c.doc_id, c.ordinal, c.text, c.section, c.paragraph,"
            " c.paragraph_end, c.char_start, c.char_end, d.title, d.date, d.source, d.url"
            f" FROM chunks c JOIN documents d USING (doc_id) WHERE c.id IN ({marks})",
            [int(i) for i in ids],
        ).fetchall()
        return {row["id"]: StoredChunk(**dict(row)) for row in rows}

    def in_snapshot(self, hits: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """The (chunk id, score) hits whose chunks exist in this snapshot: a search
        index outside the store may still hold chunks removed since."""
        if not hits:
            return []
        marks = ",".join("?" * len(hits))
        present = {row[0] for row in self.db.execute(
            f"SELECT id FROM chunks WHERE id IN ({marks})", [int(i) for i, _ in hits])}
        return [(i, s) for i, s in hits if i in present]

    def vectors(self, ids: list[int], dimension: int) -> np.ndarray:
        """The stored vectors of these chunks, in that order (zeros for a missing one)."""
        result = np.zeros((len(ids), dimension), dtype=np.float32)
        if not ids:
            return result
        marks = ",".join("?" * len(ids))
        found = dict(self.db.execute(
            f"SELECT chunk_id, vector FROM vectors WHERE chunk_id IN ({marks})",
            [int(i) for i in ids]).fetchall())
        for row, chunk_id in enumerate(ids):
            if chunk_id in found:
                result[row] = np.frombuffer(found[chunk_id], dtype=np.float32)
        return result

    def vectors_since(self, generation: int) -> Iterator[tuple[list[int], np.ndarray]]:
        """(ids, vectors) of chunks written after `generation`, a few thousand at a time."""
        cursor = self.db.execute(
            "SELECT c.id, v.vector FROM chunks c JOIN vectors v ON v.chunk_id = c.id"
            " WHERE c.generation > ? ORDER BY c.id", (generation,))
        while rows := cursor.fetchmany(4096):
            yield ([r[0] for r in rows],
                   np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows]))

    def keyword_rows_since(self, generation: int) -> Iterator[list[KeywordRow]]:
        """The keyword tokens and filter fields of chunks written after `generation`, a
        few thousand at a time (what a keyword index outside the store is built from)."""
        cursor = self.db.execute(
            "SELECT c.id, k.terms, d.doc_id, d.source, d.category, d.date FROM chunks c"
            " JOIN keywords k ON k.rowid = c.id JOIN documents d USING (doc_id)"
            " WHERE c.generation > ? ORDER BY c.id", (generation,))
        while rows := cursor.fetchmany(4096):
            yield [KeywordRow(*row) for row in rows]

    def removed_since(self, generation: int) -> list[int]:
        """Chunk ids removed after `generation` (a superset of them if the tombstones of
        that time were pruned)."""
        if generation < self.tombstones_pruned_through():
            return self._every_removed_id()
        return [r[0] for r in self.db.execute(
            "SELECT chunk_id FROM removed_chunks WHERE generation > ?", (generation,))]

    def tombstones_pruned_through(self) -> int:
        """The generation up to which tombstones were pruned (0: none ever were)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?",
                              (PRUNED_THROUGH,)).fetchone()
        return int(json.loads(row[0])) if row else 0

    def _every_removed_id(self) -> list[int]:
        """Every chunk id the store handed out (AUTOINCREMENT never reuses one) that no
        chunk holds now."""
        row = self.db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
        handed_out = np.arange(1, (int(row[0]) if row else 0) + 1, dtype=np.int64)
        held = np.fromiter((r[0] for r in self.db.execute("SELECT id FROM chunks")),
                           dtype=np.int64)
        return np.setdiff1d(handed_out, held, assume_unique=True).tolist()

    def keyword_search(self, tokens: list[str], k: int, among: list[int] | None = None,
                       filters: Filters | None = None) -> list[tuple[int, float]]:
        index = self.keyword_index
        wanted = k
        unfiltered = filters is None or filters.is_empty()
        if not index.scores_like_fts5:
            if among is not None and unfiltered:
                # The chunks are named: score them all from their FTS5 rows, as the
                # rescoring below does, without asking the other index which of them hold
                # a word (the same scores, one search less per hybrid question).
                return keyword_rescore.rescore(self.db, tokens, [(i, 0.0) for i in among],
                                               self.document_frequencies(tokens), wanted)
            # It proposes candidates; FTS5's formula ranks them (qa.index.keyword_rescore).
            k = keyword_rescore.candidates(k)
        if unfiltered:
            hits = index.search(tokens, k, among)
        elif index.takes_filters:
            hits = index.search(tokens, k, among, filters=filters)
        else:
            # FTS5 evaluates a rowid constraint one row at a time (100 ms for a 1% filter
            # at 40k chunks against 6 ms unfiltered): it ranks every match once instead
            # and keeps the first k the filters allow.
            allowed = set(self.chunk_ids_matching(filters))
            if among is not None:
                allowed &= set(among)
            hits = index.search(tokens, k, allowed=allowed)
        if not index.scores_like_fts5:
            # Also leaves out the chunks removed since the index's last update.
            return keyword_rescore.rescore(self.db, tokens, hits,
                                           self.document_frequencies(tokens), wanted)
        # An index outside the store may still hold chunks removed since its last update.
        return self.in_snapshot(hits) if index.may_lag else hits

    def chunk_ids_matching(self, filters: Filters) -> list[int]:
        """Every chunk of the documents the filters keep."""
        if filters not in self._matching:
            where, params = filter_sql(filters)
            self._matching[filters] = [row[0] for row in self.db.execute(
                f"SELECT c.id FROM chunks c JOIN documents d USING (doc_id) WHERE {where}",
                params)]
        return self._matching[filters]

    def matching_documents(self, filters: Filters) -> int:
        """How many documents the filters keep."""
        if filters.is_empty():
            return self.counts()[0]
        where, params = filter_sql(filters)
        return int(self.db.execute(f"SELECT COUNT(*) FROM documents d WHERE {where}",
                                   params).fetchone()[0])

    def sources(self) -> list[tuple[str, int]]:
        """Each source with its number of documents, most documents first."""
        return [(row[0], int(row[1])) for row in self.db.execute(
            "SELECT source, COUNT(*) FROM documents WHERE source IS NOT NULL "
            "GROUP BY source ORDER BY COUNT(*) DESC, source")]

    def date_range(self) -> tuple[str | None, str | None]:
        """The earliest and latest document dates."""
        row = self.db.execute("SELECT MIN(date), MAX(date) FROM documents").fetchone()
        return row[0], row[1]

    def dates(self, doc_ids: list[str]) -> dict[str, str | None]:
        """The date of each of these documents."""
        if not doc_ids:
            return {}
        marks = ",".join("?" * len(doc_ids))
        return dict(self.db.execute(
            f"SELECT doc_id, date FROM documents WHERE doc_id IN ({marks})", doc_ids))

    def idf(self, tokens: list[str]) -> dict[str, float]:
        """Inverse document frequency of each token over the chunks."""
        _, total = self.counts()
        return keywords.inverse_document_frequencies(
            total, self.document_frequencies(tokens), tokens)

    def document_frequencies(self, tokens: list[str]) -> dict[str, int]:
        """How many chunks hold each token, by the keyword index (tokens in no chunk are
        left out)."""
        return self.keyword_index.document_frequencies(tokens)

    def document(self, doc_id: str) -> Document:
        """A stored document, as the loader produced it."""
        row = self.db.execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None:
            raise DocumentNotFoundError(f"no document with id {doc_id!r}")
        return _document_from_row(row)

    def document_info(self, doc_id: str) -> tuple[str, str] | None:
        """(content hash, origin) of a stored document, or None."""
        row = self.db.execute("SELECT content_hash, origin FROM documents WHERE doc_id = ?",
                              (doc_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def document_hash(self, doc_id: str) -> str | None:
        info = self.document_info(doc_id)
        return info[0] if info else None

    def documents(self, offset: int = 0, limit: int | None = None,
                  newest_first: bool = False) -> list[Document]:
        """Stored documents ordered by id (or newest first, undated last), a page at a time."""
        order = "date IS NULL, date DESC, doc_id" if newest_first else "doc_id"
        rows = self.db.execute(
            f"SELECT * FROM documents ORDER BY {order} LIMIT ? OFFSET ?",
            (-1 if limit is None else limit, offset),
        ).fetchall()
        return [_document_from_row(row) for row in rows]

    def chunk_count(self, doc_id: str) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM chunks WHERE doc_id = ?",
                                   (doc_id,)).fetchone()[0])

    def origins(self) -> dict[str, list[str]]:
        """Origin (a file path, or "api") -> the ids of the documents that came from it."""
        found: dict[str, list[str]] = {}
        for origin, doc_id in self.db.execute("SELECT origin, doc_id FROM documents"):
            found.setdefault(origin, []).append(doc_id)
        return found

    def files(self) -> dict[str, FileRecord]:
        return {row["path"]: FileRecord(**dict(row))
                for row in self.db.execute("SELECT * FROM files")}


class StoreWriter(StoreReader):
    """Changes, made inside `transaction(db)`; `commit_generation` closes a batch."""

    def __init__(self, db: sqlite3.Connection):
        super().__init__(db)
        self._generation: int | None = None

    def _next_generation(self) -> int:
        if self._generation is None:
            self._generation = self.generation() + 1
        return self._generation

    def put_document(self, document: Document, chunks: list[Chunk], vectors: np.ndarray,
                     tokens: Iterable[list[str]], origin: str) -> list[int]:
        """Store a document with its chunks, vectors and keyword tokens, replacing any
        older version; returns the new chunk ids."""
        if len(vectors) != len(chunks):
            raise ValueError("one vector per chunk")
        generation = self._next_generation()
        self.remove_document(document.doc_id)
        blocks = [[block.text, block.is_heading] for block in document.blocks]
        extra = {k: v for k, v in asdict(document).items() if k not in _COLUMN_FIELDS}
        self.db.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (document.doc_id, origin, document.title, document.date, document.source,
             document.url, document.category,
             json.dumps(list(document.tags), ensure_ascii=False),
             json.dumps(blocks, ensure_ascii=False), content_hash(document),
             generation, _now(), json.dumps(extra, ensure_ascii=False)),
        )
        ids = []
        for chunk, vector in zip(chunks, vectors, strict=True):
            cursor = self.db.execute(
                "INSERT INTO chunks (doc_id, ordinal, text, section, paragraph, paragraph_end,"
                " char_start, char_end, generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (chunk.doc_id, chunk.ordinal, chunk.text, chunk.section, chunk.paragraph,
                 chunk.paragraph_end, chunk.char_start, chunk.char_end, generation),
            )
            chunk_id = int(cursor.lastrowid)
            self.db.execute("INSERT INTO vectors VALUES (?, ?)",
                            (chunk_id, np.asarray(vector, dtype=np.float32).tobytes()))
            ids.append(chunk_id)
        keywords.add_keywords(self.db, zip(ids, tokens, strict=True))
        self._adjust_counts(1, len(ids))
        return ids

    def remove_document(self, doc_id: str) -> list[int] | None:
        """Delete a document, its chunks, vectors and keywords; None if it was not stored."""
        if self.document_info(doc_id) is None:
            return None
        generation = self._next_generation()
        ids = [row[0] for row in self.db.execute(
            "SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))]
        keywords.remove_keywords(self.db, ids)
        self.db.executemany("INSERT OR REPLACE INTO removed_chunks VALUES (?, ?)",
                            ((i, generation) for i in ids))
        self.db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        self._adjust_counts(-1, -len(ids))
        return ids

    def prune_tombstones(self, keep: int | None = None) -> int:
        """Delete the tombstones older than the last `keep` generations (default
        TOMBSTONE_GENERATIONS), in the commit's transaction; returns how many."""
        if self._generation is None:
            return 0
        through = self._generation - (TOMBSTONE_GENERATIONS if keep is None else keep)
        if through <= self.tombstones_pruned_through():
            return 0
        pruned = self.db.execute("DELETE FROM removed_chunks WHERE generation <= ?",
                                 (through,)).rowcount
        if pruned:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                            (PRUNED_THROUGH, json.dumps(through)))
        return pruned

    def put_file(self, record: FileRecord) -> None:
        self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                        (record.path, record.size, record.mtime_ns, record.sha256))

    def remove_file(self, path: str) -> None:
        self.db.execute("DELETE FROM files WHERE path = ?", (path,))

    def _adjust_counts(self, documents: int, chunks: int) -> None:
        for key, change in (("documents", documents), ("chunks", chunks)):
            self.db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = ?", (change, key))

    def commit_generation(self) -> int | None:
        """Record the new generation if anything changed (call before COMMIT)."""
        if self._generation is None:
            return None
        generation, self._generation = self._generation, None
        self.db.execute("UPDATE meta SET value = ? WHERE key = 'generation'",
                        (json.dumps(generation),))
        self.db.execute("UPDATE meta SET value = ? WHERE key = 'changed_at'",
                        (json.dumps(_now()),))
        return generation


_COLUMN_FIELDS = frozenset(
    {"doc_id", "blocks", "title", "date", "source", "url", "category", "tags"})
_DOCUMENT_FIELDS = frozenset(f.name for f in fields(Document))


def _document_from_row(row: sqlite3.Row) -> Document:
    extra = {k: v for k, v in json.loads(row["extra"]).items() if k in _DOCUMENT_FIELDS}
    extra.setdefault("path", row["origin"])
    return Document(
        doc_id=row["doc_id"],
        blocks=tuple(Block(text, bool(heading)) for text, heading in json.loads(row["blocks"])),
        title=row["title"],
        date=row["date"],
        source=row["source"],
        url=row["url"],
        category=row["category"],
        tags=tuple(json.loads(row["tags"])),
        **extra,
    )
