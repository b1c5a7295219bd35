"""SQLite chunk store: documents with their clean text, and chunks with stable ids.

Chunk ids come from an AUTOINCREMENT key, so an id is never reused: the FAISS
index can point at them, and a document can later be added, replaced or removed
on its own (each document keeps a content hash to tell whether it changed).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from qa.errors import DocumentNotFoundError
from qa.ingest.chunker import Chunk
from qa.ingest.document import Block, Document

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    title TEXT, date TEXT, source TEXT, url TEXT, category TEXT,
    tags TEXT NOT NULL,
    blocks TEXT NOT NULL,
    content_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    section TEXT,
    paragraph INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    UNIQUE (doc_id, ordinal)
);
"""


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the retriever needs it: the passage and its full citation."""

    id: int
    doc_id: str
    ordinal: int
    text: str
    section: str | None
    paragraph: int
    char_start: int
    char_end: int
    title: str | None
    date: str | None
    source: str | None
    url: str | None


def content_hash(document: Document) -> str:
    """A hash of everything loaded from a document, to tell whether it changed."""
    payload = json.dumps(asdict(document), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ChunkStore:
    """Documents and chunks in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def add_document(self, document: Document, chunks: Iterable[Chunk]) -> list[int]:
        """Store a document and its chunks (replacing any older version); returns chunk ids."""
        blocks = [[block.text, block.is_heading] for block in document.blocks]
        with self._lock, self._db:
            self._db.execute("DELETE FROM documents WHERE doc_id = ?", (document.doc_id,))
            self._db.execute(
                "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    document.doc_id, document.path, document.title, document.date,
                    document.source, document.url, document.category,
                    json.dumps(list(document.tags), ensure_ascii=False),
                    json.dumps(blocks, ensure_ascii=False), content_hash(document),
                ),
            )
            ids = []
            for chunk in chunks:
                cursor = self._db.execute(
                    "INSERT INTO chunks (doc_id, ordinal, text, section, paragraph,"
                    " char_start, char_end) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        chunk.doc_id, chunk.ordinal, chunk.text, chunk.section,
                        chunk.paragraph, chunk.char_start, chunk.char_end,
                    ),
                )
                ids.append(int(cursor.lastrowid))
        return ids

    def remove_document(self, doc_id: str) -> list[int]:
        """Delete a document and its chunks; returns the removed chunk ids."""
        with self._lock, self._db:
            ids = [row[0] for row in self._db.execute(
                "SELECT id FROM chunks WHERE doc_id = ?", (doc_id,))]
            self._db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        return ids

    def document_hash(self, doc_id: str) -> str | None:
        """The stored content hash of a document, or None if it is not stored."""
        with self._lock:
            row = self._db.execute(
                "SELECT content_hash FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return row[0] if row else None

    def chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        """The chunks with these ids, with their documents' citation fields."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.doc_id, c.ordinal, c.text, c.section, c.paragraph,"
                " c.char_start, c.char_end, d.title, d.date, d.source, d.url"
                f" FROM chunks c JOIN documents d USING (doc_id) WHERE c.id IN ({marks})",
                [int(i) for i in ids],
            ).fetchall()
        return {row["id"]: StoredChunk(**dict(row)) for row in rows}

    def all_chunk_ids(self) -> list[int]:
        """Every chunk id, in document order."""
        with self._lock:
            return [row[0] for row in self._db.execute(
                "SELECT id FROM chunks ORDER BY doc_id, ordinal")]

    def document(self, doc_id: str) -> Document:
        """A stored document, as the loader produced it."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None:
            raise DocumentNotFoundError(f"no document with id {doc_id!r}")
        return _document_from_row(row)

    def documents(self, offset: int = 0, limit: int | None = None) -> list[Document]:
        """Stored documents ordered by id, one page at a time."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM documents ORDER BY doc_id LIMIT ? OFFSET ?",
                (-1 if limit is None else limit, offset),
            ).fetchall()
        return [_document_from_row(row) for row in rows]

    def counts(self) -> tuple[int, int]:
        """(documents, chunks) stored."""
        with self._lock:
            documents = self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            chunks = self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(documents), int(chunks)


def _document_from_row(row: sqlite3.Row) -> Document:
    return Document(
        doc_id=row["doc_id"],
        path=row["path"],
        blocks=tuple(Block(text, bool(heading)) for text, heading in json.loads(row["blocks"])),
        title=row["title"],
        date=row["date"],
        source=row["source"],
        url=row["url"],
        category=row["category"],
        tags=tuple(json.loads(row["tags"])),
    )
