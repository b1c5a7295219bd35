"""FAISS inner-product index over normalised vectors. The only module that imports faiss."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np


class VectorIndex:
    """Exact inner-product search; ids are the chunk store's stable chunk ids."""

    def __init__(self, index: faiss.Index):
        self._index = index

    @classmethod
    def empty(cls, dimension: int) -> VectorIndex:
        """A new index for vectors of `dimension`."""
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        """Read an index written by `save`."""
        return cls(faiss.read_index(str(path)))

    def save(self, path: Path) -> None:
        """Write the index to `path`."""
        faiss.write_index(self._index, str(path))

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        """Add vectors under the given ids."""
        if len(ids) != len(vectors):
            raise ValueError("one id per vector")
        if len(ids):
            self._index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
            )

    def remove(self, ids: list[int]) -> int:
        """Remove the vectors with these ids; returns how many were removed."""
        if not ids:
            return 0
        return int(self._index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k best (id, inner product) pairs for one query vector, best first."""
        k = min(k, len(self))
        if k <= 0:
            return []
        scores, ids = self._index.search(np.asarray(query, dtype=np.float32).reshape(1, -1), k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def vectors(self, ids: list[int]) -> np.ndarray:
        """The stored vectors for these ids (in that order)."""
        return np.vstack([self._index.reconstruct(int(i)) for i in ids])
