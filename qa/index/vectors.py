"""FAISS inner-product index over normalised vectors. faiss is imported only here and in
qa.index.mapped_ivf (a saved approximate index read through a memory map).

Two kinds behind one class: exact (a flat index, below `index.ann_min_chunks` chunks)
and approximate (IVF over 8-bit scalar-quantised vectors, 384 bytes a vector instead of
1,536). IVF was chosen over HNSW because it can remove ids (the live archive removes
and replaces documents) and takes an id filter; its recall and speed on real e5 vectors
are measured by scripts/bench_ann.py (README, "Speed"). Either kind is only a cache of
the store's float32 vectors: `build` makes one from them, and an approximate index's
scores are recomputed from the store by the caller (`exact_scores` is False). A saved
approximate index is loaded memory-mapped (qa.index.mapped_ivf): processes reading the
same file share its pages, and later changes are held beside it in memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import faiss
import numpy as np

from qa.index.mapped_ivf import MappedIvf

# One question at a time: OpenMP threads cost more than they give. Measured with
# scripts/bench_scale.py's archive (10k chunks, top 50) on a busy 2-core machine: 59 ms
# median with 2 threads, 0.4 ms with 1. A server answers questions in parallel anyway.
faiss.omp_set_num_threads(1)

# IVF lists: about 4 * sqrt(chunks) (4,000 at 1M), at least 64; lists searched per
# question: one in PROBE_SHARE, at least MIN_PROBE. e5 vectors cluster loosely: on 32,589
# real passage vectors and 1,000 real questions (scripts/bench_ann.py), IVF-SQ8 rescored
# top 50 reached recall@10 0.986 against exact search with sqrt(n) lists only when
# probing 1/3 of them; with 4 * sqrt(n) lists, 0.988 probing 1/6 (0.5 ms CPU against
# 2.2 ms exact). At 10,000 vectors the same rule gave 0.969: recall grows with n.
PROBE_SHARE = 6
MIN_PROBE = 16
# Training vectors per list (FAISS warns below 39) and in all.
TRAIN_PER_LIST = 40
MAX_TRAIN = 160_000
# An approximate index is rebuilt once the store holds this many times the chunks it
# was trained for, and an exact one replaces it below half the threshold (so that a
# store near the threshold does not switch back and forth).
REGROW = 8

Batches = Callable[[], Iterable[tuple[list[int], np.ndarray]]]


class VectorIndex:
    """Inner-product search; ids are the chunk store's stable chunk ids."""

    def __init__(self, index: faiss.Index | MappedIvf, trained_for: int = 0):
        self._index = index
        self._ivf = index.ivf if isinstance(index, MappedIvf) else _ivf_of(index)
        # Chunks the IVF lists were sized for (kept in the file as its list count).
        self._trained_for = trained_for or (self._ivf.nlist ** 2 // 16 if self._ivf else 0)

    @classmethod
    def empty(cls, dimension: int) -> VectorIndex:
        """A new exact index for vectors of `dimension`."""
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))

    @classmethod
    def build(cls, dimension: int, count: int, batches: Batches,
              ann_min_chunks: int) -> VectorIndex:
        """The kind of index suited to `count` vectors, filled from `batches()` (called
        twice for an approximate index: once to sample training vectors, once to add)."""
        if count < ann_min_chunks:
            index = cls.empty(dimension)
        else:
            index = cls(_trained_ivf(dimension, count, batches), count)
        for ids, vectors in batches():
            index.add(ids, vectors)
        return index

    def suits(self, count: int, ann_min_chunks: int) -> bool:
        """Whether this kind of index still suits a store of `count` chunks."""
        if self._ivf is None:
            return count < ann_min_chunks
        return ann_min_chunks // 2 <= count <= self._trained_for * REGROW

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        """Read an index written by `save` (an approximate one memory-mapped); raises
        ValueError if the file is not one."""
        try:
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP)
            if _ivf_of(index) is not None:
                return cls(MappedIvf(index))
            return cls(index)
        except RuntimeError as exc:  # faiss reports a bad file as a RuntimeError
            raise ValueError(f"{path} is not a readable FAISS index: {exc}") from None

    def save(self, path: Path) -> None:
        """Write the index to `path` (through a temporary file, so never half written)."""
        temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        index = self._index.folded() if isinstance(self._index, MappedIvf) else self._index
        faiss.write_index(index, str(temporary))
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)

    @property
    def kind(self) -> str:
        """"exact" or "approximate" (for status and benchmarks; callers need not care)."""
        return "exact" if self._ivf is None else "approximate"

    @property
    def exact_scores(self) -> bool:
        """Whether `search` returns exact inner products (else recompute them)."""
        return self._ivf is None

    def ids(self) -> np.ndarray:
        """Every id in the index."""
        if isinstance(self._index, MappedIvf):
            return self._index.ids()
        if self._ivf is not None:
            lists = self._ivf.invlists
            parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                     for i in range(self._ivf.nlist) if lists.list_size(i)]
            return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
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
        selector = (faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
                    if allowed is not None else None)
        if self._ivf is not None:
            probe = max(MIN_PROBE, self._ivf.nlist // PROBE_SHARE)
            if allowed is not None:
                # A filter keeps a share of the chunks: search that many more lists, so
                # that about as many allowed vectors are scored as without a filter.
                probe = math.ceil(probe * len(self) / max(1, len(allowed)))
            params = faiss.SearchParametersIVF(nprobe=min(probe, self._ivf.nlist))
            if selector is not None:
                params.sel = selector
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        scores, ids = self._index.search(np.asarray(query, dtype=np.float32).reshape(1, -1), k,
                                         params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def vectors(self, ids: list[int]) -> np.ndarray:
        """The indexed vectors for these ids (in that order; decoded, so approximate for
        an approximate index)."""
        return np.vstack([self._index.reconstruct(int(i)) for i in ids])


def list_count(count: int) -> int:
    """IVF lists for an index of `count` vectors."""
    return max(64, round(4 * math.sqrt(count)))


def _trained_ivf(dimension: int, count: int, batches: Batches) -> faiss.Index:
    nlist = list_count(count)
    wanted = min(MAX_TRAIN, max(nlist * TRAIN_PER_LIST, 1))
    step = max(1, count // wanted)
    sample = np.vstack([vectors[::step] for _, vectors in batches()] or
                       [np.zeros((0, dimension), np.float32)])
    if len(sample) < nlist:
        raise ValueError(f"{len(sample)} vectors cannot train {nlist} lists")
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFScalarQuantizer(quantizer, dimension, nlist,
                                          faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT)
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    index.own_fields = True
    quantizer.this.disown()
    # Ids map to their list through a hash table: removal without a scan, and reconstruct.
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


def _ivf_of(index: faiss.Index):
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None
