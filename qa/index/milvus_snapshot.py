"""A reader's view of the Milvus engine: one read transaction on the side store, searches
in the collection that goes with it; Milvus hits the transaction does not hold (rows of
a commit still under way, or of chunks removed since) are dropped."""

from __future__ import annotations

import sqlite3

import numpy as np

from qa.index import keywords, milvus_bm25
from qa.index.engine import Filters
from qa.index.milvus_collection import Collection
from qa.index.milvus_query import and_, encode_terms, milvus_filter, sql_filter
from qa.index.milvus_side import document_frequencies
from qa.index.store import StoreReader


class MilvusSnapshot(StoreReader):
    """One side-store read transaction and the collection of the same pair."""

    def __init__(self, db: sqlite3.Connection, collection: Collection, analyzer: str,
                 keeps_statistics: bool = True):
        """`keeps_statistics`: whether the side store has BM25 statistics
        (`qa.index.milvus_bm25.has_statistics`; one made before them has not)."""
        super().__init__(db)
        self.collection = collection
        self.analyzer = analyzer
        self.keeps_statistics = keeps_statistics

    def vector_search(self, vector: np.ndarray, k: int,
                      filters: Filters | None = None) -> list[tuple[int, float]]:
        if k <= 0:
            return []
        hits = self.collection.search([np.asarray(vector, dtype=np.float32).tolist()],
                                      "vector", k, milvus_filter(filters))
        return self.in_snapshot(hits)

    def keyword_search(self, tokens: list[str], k: int, among: list[int] | None = None,
                       filters: Filters | None = None) -> list[tuple[int, float]]:
        """BM25 over the chunks (or only those `among`, to score another list's hits),
        scored exactly from the side store's statistics (`qa.index.milvus_bm25`)."""
        unique = list(dict.fromkeys(t for t in tokens if t.strip()))
        if not unique or k <= 0 or (among is not None and not among):
            return []
        if not self.keeps_statistics:
            return self._milvus_keyword_search(unique, k, among, filters)
        frequencies = document_frequencies(self.db, milvus_bm25.as_fts5_terms(unique))
        if not frequencies:
            return []
        rare = milvus_bm25.rarest(frequencies, milvus_bm25.RARE_POSTINGS)
        candidates: set[int] | None = None  # None: every chunk holding a word
        if among is not None:
            candidates = set(among)
        elif len(rare) < len(frequencies):
            # Milvus proposes the chunks matching many of the words (its own scores, per
            # segment, only choose them); the side store every chunk of the rarest words.
            proposed = self.collection.search(
                [encode_terms(unique, self.analyzer)], "sparse",
                k * milvus_bm25.MILVUS_DEPTH, milvus_filter(filters))
            candidates = {i for i, _ in proposed} | milvus_bm25.chunks_holding(self.db, rare)
        filtered = filters is not None and not filters.is_empty()
        if filtered and candidates is not None:
            candidates = self.matching(candidates, filters)
        found = milvus_bm25.scores(self.db, frequencies, self.counts()[1], candidates)
        if filtered and candidates is None:
            kept = self.matching(set(found), filters)
            found = {i: s for i, s in found.items() if i in kept}
        return milvus_bm25.best(found, k)

    def matching(self, ids: set[int], filters: Filters) -> set[int]:
        """Those of these chunks whose documents the filters keep."""
        if not ids:
            return set()
        condition, params = sql_filter(filters)
        marks = ",".join("?" * len(ids))
        return {row[0] for row in self.db.execute(
            f"SELECT c.id FROM chunks c JOIN documents USING (doc_id) WHERE c.id IN ({marks})"
            f" AND {condition}", [*ids, *params])}

    def _milvus_keyword_search(self, unique: list[str], k: int, among: list[int] | None,
                               filters: Filters | None) -> list[tuple[int, float]]:
        """Milvus' own BM25 (a side store without statistics): per segment on Milvus Lite."""
        expression = milvus_filter(filters)
        if among is not None:
            expression = and_(expression, f"id in [{', '.join(str(int(i)) for i in among)}]")
            k = min(k, len(among))
        hits = self.collection.search([encode_terms(unique, self.analyzer)], "sparse", k,
                                      expression)
        # Milvus Lite reports BM25 as a negative distance, a server as a positive one: the
        # score is its size. Never threshold on it; fusion rescales it per question.
        return self.in_snapshot([(i, abs(s)) for i, s in hits])

    def vectors(self, ids: list[int]) -> np.ndarray:  # type: ignore[override]
        """The stored vectors of these chunks, in that order (zeros for a missing one)."""
        result = np.zeros((len(ids), self.collection.dimension), dtype=np.float32)
        if not ids:
            return result
        found = self.collection.fetch_vectors(ids)
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
