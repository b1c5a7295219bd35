"""The storage interface the retriever, the indexer and the web service use.

An engine keeps documents, chunks, their vectors and their keyword tokens, and
answers searches over a consistent snapshot. The local engine (FAISS + SQLite,
`qa.index.local_engine`) is one implementation; another engine implements the
same few methods in a file of its own.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from qa.filters import Filters
from qa.index.store import FileRecord, StoredChunk, StoreWriter
from qa.ingest.chunker import Chunk
from qa.ingest.document import Document


@dataclass(frozen=True)
class PutDocument:
    """Store a document (replacing any older version) with its derived data."""

    document: Document
    chunks: list[Chunk]
    vectors: np.ndarray
    tokens: list[list[str]]
    origin: str


@dataclass(frozen=True)
class RemoveDocument:
    doc_id: str


@dataclass(frozen=True)
class PutFile:
    """Remember a corpus file's size, time and hash (written with its last document)."""

    record: FileRecord


@dataclass(frozen=True)
class RemoveFile:
    path: str


Change = PutDocument | RemoveDocument | PutFile | RemoveFile


@dataclass
class CommitResult:
    """What a commit did: the new generation, chunk ids per stored document, and
    which removals found their document."""

    generation: int | None
    chunk_ids: dict[str, list[int]] = field(default_factory=dict)
    removed: dict[str, bool] = field(default_factory=dict)


class Snapshot(Protocol):
    """Read access to one consistent state of the index."""

    def vector_search(self, vector: np.ndarray, k: int,
                      filters: Filters | None = None) -> list[tuple[int, float]]: ...
    def keyword_search(self, tokens: list[str], k: int, among: list[int] | None = None,
                       filters: Filters | None = None) -> list[tuple[int, float]]: ...
    def matching_documents(self, filters: Filters) -> int: ...
    def sources(self) -> list[tuple[str, int]]: ...
    def date_range(self) -> tuple[str | None, str | None]: ...
    def vectors(self, ids: list[int]) -> np.ndarray: ...
    def idf(self, tokens: list[str]) -> dict[str, float]: ...
    def chunks(self, ids: list[int]) -> dict[int, StoredChunk]: ...
    def document(self, doc_id: str) -> Document: ...
    def document_info(self, doc_id: str) -> tuple[str, str] | None: ...
    def documents(self, offset: int = 0, limit: int | None = None) -> list[Document]: ...
    def chunk_count(self, doc_id: str) -> int: ...
    def counts(self) -> tuple[int, int]: ...
    def origins(self) -> dict[str, list[str]]: ...
    def files(self) -> dict[str, FileRecord]: ...


class Engine(Protocol):
    """An index that can be searched while it changes."""

    manifest: dict[str, Any]
    dimension: int

    def snapshot(self) -> AbstractContextManager[Snapshot]: ...
    def commit(self, changes: list[Change]) -> CommitResult: ...
    def refresh(self) -> bool: ...
    def status(self) -> dict[str, Any]: ...
    def close(self) -> None: ...



def apply_record_change(writer: StoreWriter, change: Change, result: CommitResult) -> None:
    """A change other than PutDocument, on the store (or side store) `writer`: what both
    engines do alike, as their PutDocument differs."""
    if isinstance(change, RemoveDocument):
        result.removed[change.doc_id] = writer.remove_document(change.doc_id) is not None
    elif isinstance(change, PutFile):
        writer.put_file(change.record)
    elif isinstance(change, RemoveFile):
        writer.remove_file(change.path)
    else:  # pragma: no cover
        raise TypeError(f"unknown change {change!r}")
