"""FAISS inner-product index over normalised vectors. The only module that imports faiss."""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np

# One question at a time: OpenMP threads cost more than they give. Measured with
# scripts/bench_scale.py's archive (10k chunks, top 50) on a busy 2-core machine: 59 ms
# median with 2 threads, 0.4 ms with 1. A server answers questions in parallel anyway.
faiss.omp_set_num_threads(1)


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
        """Read an index written by `save`; raises ValueError if the file is not one."""
        try:
            return cls(faiss.read_index(str(path)))
        except RuntimeError as exc:  # faiss reports a bad file as a RuntimeError
            raise ValueError(f"{path} is not a readable FAISS index: {exc}") from None

    def save(self, path: Path) -> None:
        """Write the index to `path` (through a temporary file, so never half written)."""
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        faiss.write_index(self._index, str(temporary))
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    def ids(self) -> np.ndarray:
        """Every id in the index."""
        if isinstance(self._index, faiss.IndexIDMap):
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        return np.arange(len(self), dtype=np.int64)

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

    def search(self, query: np.ndarray, k: int,
               allowed: list[int] | None = None) -> list[tuple[int, float]]:
        """The k best (id, inner product) pairs for one query vector, best first;
        only among `allowed` ids if given."""
        k = min(k, len(self))
        if k <= 0 or (allowed is not None and not allowed):
            return []
        params = None
        if allowed is not None:
            params = faiss.SearchParameters(
                sel=faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)))
        scores, ids = self._index.search(np.asarray(query, dtype=np.float32).reshape(1, -1), k,
                                         params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def vectors(self, ids: list[int]) -> np.ndarray:
        """The stored vectors for these ids (in that order)."""
        return np.vstack([self._index.reconstruct(int(i)) for i in ids])
