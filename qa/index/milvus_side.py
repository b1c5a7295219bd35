"""The Milvus engine's side store: a SQLite chunk store without vectors or postings.

Milvus holds what grows expensive (each chunk's vector and its BM25 postings); this file
holds what must be exact and transactional: the documents with their clean text, the
chunks with their citation fields and stable ids, the corpus files, the generation, and
how many chunks hold each keyword token (Milvus does not expose document frequencies,
and the retriever weighs a question's words by idf), and the BM25 statistics every keyword
score is computed from (`qa.index.milvus_bm25`). It has the local store's schema
(`qa.index.store.SCHEMA`, read through `StoreReader`), whose `vectors` and keyword
tables stay empty, plus the two tables below.

Its transaction is the commit point of the engine: a chunk is live when its row is
committed here, whatever Milvus holds at that moment.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qa.index import milvus_bm25
from qa.index.store import StoreWriter, connect, content_hash, create_store, transaction
from qa.ingest.chunker import Chunk
from qa.ingest.document import Document

SIDE_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunk_terms (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    terms TEXT NOT NULL  -- the chunk's distinct keyword tokens, a JSON list
);
CREATE TABLE IF NOT EXISTS term_chunks (term TEXT PRIMARY KEY, chunks INTEGER NOT NULL)
    WITHOUT ROWID;
"""

# Columns of `documents` filled from Document fields of the same name.
_COLUMNS = ("title", "date", "source", "url", "category")
_NOT_EXTRA = frozenset({"doc_id", "blocks", "tags", *_COLUMNS})


def create_side_store(path: Path, settings: dict[str, Any]) -> None:
    """An empty side store recording the index's settings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    create_store(path, settings)
    db = connect(path, readonly=False)
    try:
        db.executescript(SIDE_SCHEMA + milvus_bm25.SCHEMA)
    finally:
        db.close()


def document_frequencies(db: sqlite3.Connection, tokens: list[str]) -> dict[str, int]:
    """How many chunks hold each token (tokens in no chunk are left out)."""
    unique = list(dict.fromkeys(tokens))
    if not unique:
        return {}
    marks = ",".join("?" * len(unique))
    return dict(db.execute(f"SELECT term, chunks FROM term_chunks WHERE term IN ({marks})",
                           unique).fetchall())


class SideWriter(StoreWriter):
    """Changes to the side store inside the caller's transaction."""

    def __init__(self, db: sqlite3.Connection):
        super().__init__(db)
        self._statistics: bool | None = None

    @property
    def keeps_statistics(self) -> bool:
        """Whether BM25 statistics are kept (a side store made before them: not)."""
        if self._statistics is None:
            self._statistics = milvus_bm25.has_statistics(self.db)
        return self._statistics

    def put_document(self, document: Document, chunks: list[Chunk], vectors: Any,
                     tokens: Iterable[list[str]], origin: str) -> list[int]:
        """Store a document and its chunks (new ids), replacing any older version; the
        vectors and tokens go to Milvus (the caller's business), the token counts and
        BM25 statistics here."""
        generation = self._next_generation()
        self.remove_document(document.doc_id)
        fields = asdict(document)
        extra = {k: v for k, v in fields.items() if k not in _NOT_EXTRA}
        blocks = [[block.text, block.is_heading] for block in document.blocks]
        self.db.execute(
            "INSERT INTO documents (doc_id, origin, title, date, source, url, category, tags,"
            " blocks, content_hash, generation, updated_at, extra)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (document.doc_id, origin, *(fields[c] for c in _COLUMNS),
             json.dumps(list(document.tags), ensure_ascii=False),
             json.dumps(blocks, ensure_ascii=False), content_hash(document), generation,
             time.strftime("%Y-%m-%dT%H:%M:%S%z"), json.dumps(extra, ensure_ascii=False)))
        ids = []
        counts: Counter[str] = Counter()
        terms = [milvus_bm25.as_fts5_terms(chunk_tokens) for chunk_tokens in tokens]
        for chunk, chunk_terms in zip(chunks, terms, strict=True):
            cursor = self.db.execute(
                "INSERT INTO chunks (doc_id, ordinal, text, section, paragraph, paragraph_end,"
                " char_start, char_end, generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (chunk.doc_id, chunk.ordinal, chunk.text, chunk.section, chunk.paragraph,
                 chunk.paragraph_end, chunk.char_start, chunk.char_end, generation))
            chunk_id = int(cursor.lastrowid)
            distinct = sorted(set(chunk_terms))
            self.db.execute("INSERT INTO chunk_terms VALUES (?, ?)",
                            (chunk_id, json.dumps(distinct, ensure_ascii=False)))
            counts.update(distinct)
            ids.append(chunk_id)
        self.db.executemany(
            "INSERT INTO term_chunks VALUES (?, ?)"
            " ON CONFLICT (term) DO UPDATE SET chunks = chunks + excluded.chunks",
            counts.items())
        if self.keeps_statistics:
            milvus_bm25.add_chunks(self.db, zip(ids, terms, strict=True))
        self._adjust_counts(1, len(ids))
        return ids

    def remove_document(self, doc_id: str) -> list[int] | None:
        """Delete a document and its chunks; their ids go to `removed_chunks`, the list of
        rows still to delete from Milvus. None if it was not stored."""
        counts: Counter[str] = Counter()
        terms_of: dict[int, list[str]] = {}
        for chunk_id, terms in self.db.execute(
                "SELECT t.chunk_id, t.terms FROM chunk_terms t JOIN chunks c ON c.id = t.chunk_id"
                " WHERE c.doc_id = ?", (doc_id,)):
            terms_of[chunk_id] = json.loads(terms)
            counts.update(terms_of[chunk_id])
        if self.keeps_statistics:
            milvus_bm25.remove_chunks(self.db, terms_of)
        removed = super().remove_document(doc_id)
        if removed is not None and counts:
            self.db.executemany("UPDATE term_chunks SET chunks = chunks - ? WHERE term = ?",
                                ((n, t) for t, n in counts.items()))
            self.db.execute("DELETE FROM term_chunks WHERE chunks <= 0")
        return removed

    def last_chunk_id(self) -> int:
        """The highest chunk id ever handed out (committed), 0 for none."""
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
        return int(row[0]) if row else 0

    def pending_removals(self) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT chunk_id FROM removed_chunks")]

    def forget_removals(self, ids: list[int]) -> None:
        self.db.executemany("DELETE FROM removed_chunks WHERE chunk_id = ?",
                            ((i,) for i in ids))


def mark_replaced(path: Path, collection: str) -> None:
    """Record in a side store that a rebuild replaced its pair by `collection`'s."""
    if not path.is_file():
        return
    db = connect(path, readonly=False)
    try:
        with transaction(db):
            db.execute("INSERT OR REPLACE INTO meta VALUES ('replaced_by', ?)",
                       (json.dumps(collection),))
    finally:
        db.close()


def replaced_by(db: sqlite3.Connection) -> str | None:
    """The collection whose pair replaced this side store's, if a rebuild did."""
    row = db.execute("SELECT value FROM meta WHERE key = 'replaced_by'").fetchone()
    return json.loads(row[0]) if row else None
