"""Writing a batch of changes to the Milvus engine: side-store rows and Milvus rows.

Commit order, and what a reader sees meanwhile (Milvus has no multi-row transactions;
the side store's transaction is the commit point):

1. The writer lock, then BEGIN IMMEDIATE on the side store; rows a crashed commit left
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
import sqlite3
from typing import Any

import numpy as np

from qa.index.engine import (
    Change,
    CommitResult,
    PutDocument,
    apply_record_change,
)
from qa.index.milvus_collection import TERMS_CHARS, VARCHAR, WRITE_BATCH, Collection
from qa.index.milvus_query import encode_terms
from qa.index.milvus_side import SideWriter
from qa.index.store import transaction

logger = logging.getLogger(__name__)


def commit_changes(db: sqlite3.Connection, collection: Collection, analyzer: str,
                   changes: list[Change], result: CommitResult) -> None:
    """Steps 1 (after the lock) to 4 above, on a writable side-store connection."""
    writer = SideWriter(db)
    with transaction(db):
        collection.delete_where(f"id > {writer.last_chunk_id()}")  # a crashed commit's rows
        rows: list[dict[str, Any]] = []
        for change in changes:
            _apply(writer, change, result, rows, analyzer)
        # Chunks a later change of this batch replaced or removed stay out.
        stale = set(writer.pending_removals())
        collection.upsert([row for row in rows if row["id"] not in stale])
        result.generation = writer.commit_generation()
    removed = writer.pending_removals()
    for start in range(0, len(removed), WRITE_BATCH):
        batch = removed[start:start + WRITE_BATCH]
        collection.delete(batch)
        with transaction(db):
            writer.forget_removals(batch)


def _apply(writer: SideWriter, change: Change, result: CommitResult,
           rows: list[dict[str, Any]], analyzer: str) -> None:
    if isinstance(change, PutDocument):
        document = change.document
        ids = writer.put_document(document, change.chunks, change.vectors, change.tokens,
                                  change.origin)
        result.chunk_ids[document.doc_id] = ids
        for chunk_id, vector, tokens in zip(ids, change.vectors, change.tokens, strict=True):
            terms = encode_terms(tokens, analyzer)
            if len(terms) > TERMS_CHARS:
                logger.warning("chunk %d of %s has too many keyword tokens; keeping the first",
                               chunk_id, document.doc_id)
                terms = terms[:TERMS_CHARS].rsplit(" ", 1)[0]
            rows.append({
                "id": chunk_id, "doc_id": document.doc_id, "terms": terms,
                "vector": np.asarray(vector, dtype=np.float32).tolist(),
                "date": document.date or "", "source": (document.source or "")[:VARCHAR],
                "category": (document.category or "")[:VARCHAR],
            })
    else:
        apply_record_change(writer, change, result)
