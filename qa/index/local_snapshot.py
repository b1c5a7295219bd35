"""A snapshot of the local engine's store: what its readers search.

It is a read transaction on the thread's own connection plus the vector index
under a shared lock. The vector index may lag the store by the changes of the last
moments; its hits are checked against the snapshot, and any score it lacks is computed
from the vectors in the store, so an answer never mixes two versions of a document.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import numpy as np

from qa.filters import Filters
from qa.index.filter_ids import FilterIds
from qa.index.store import StoredChunk, StoreReader
from qa.index.tantivy_keywords import TantivyKeywords
from qa.index.vectors import VectorIndex

# A filter keeping up to this many chunks is searched exactly from the stored vectors;
# a broader one by FAISS restricted to the chunks it keeps.
EXACT_FILTERED_SEARCH = 4096


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
