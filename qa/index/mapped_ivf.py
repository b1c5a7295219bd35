"""A saved IVF index read through a memory map, plus the changes made since it was saved.

`faiss.read_index(path, IO_FLAG_MMAP)` leaves an IVF index's inverted lists (the 8-bit
codes and ids, ~0.4 GB at a million chunks) in the file: the operating system pages
them in as searches touch them, and every process that maps the same file shares those
pages through the page cache instead of holding a private copy each. The mapped lists
are read-only (adding to or removing from them aborts the process), so what the store
changed since the file was saved is held here in memory:

- ids removed or replaced since: hidden from the mapped lists by an id selector;
- vectors added or replaced since: a second IVF index of the same kind that shares the
  mapped one's trained quantizer and scalar quantizer, so a vector lands in the same list
  with the same code as it would in one index, and a search probing the same lists scores
  it the same. Merging the two searches' top k gives what one index holding both would.

`folded()` writes the two back into one in-memory index (for saving a new cache file,
which a reload maps in turn). Duck-typed as the faiss index `qa.index.vectors` wraps.
"""

from __future__ import annotations

import ctypes
import threading

import faiss
import numpy as np


class MappedIvf:
    """A read-only memory-mapped IVF index and an in-memory delta of later changes."""

    def __init__(self, base: faiss.Index):
        """`base`: an IVF index read with `faiss.read_index(path, faiss.IO_FLAG_MMAP)`
        (its lists a read-only OnDiskInvertedLists over the file)."""
        self._base = base
        self.ivf = faiss.downcast_index(faiss.extract_index_ivf(base))
        # Before each search, faiss's mapped lists start up to 32 threads that read the
        # probed lists once more to fault their pages in (and a search waits for the
        # previous one's threads). The pages stay in the page cache anyway: at 1M chunks
        # (666 lists probed) a search took 25-27 ms of CPU with them, 17 ms without,
        # as with the lists in memory.
        faiss.downcast_InvertedLists(self.ivf.invlists).prefetch_nthread = 0
        if self.ivf.direct_map.type != faiss.DirectMap.NoMap:
            # The id -> list hash table a file may hold is read into private memory (42
            # MB at 1M ids); searches do not need it, so drop it and give the memory back.
            self.ivf.set_direct_map_type(faiss.DirectMap.NoMap)
            _give_back_freed_memory()
        self._delta = _empty_like(self.ivf)
        self._removed = np.zeros(0, np.int64)
        self._not_removed: faiss.IDSelector | None = None
        # Sorted base ids, and their list and offset: built on first need (8-16 MB at 1M).
        self._base_ids: np.ndarray | None = None
        self._where: tuple[np.ndarray, np.ndarray] | None = None
        self._lazy = threading.Lock()

    @property
    def d(self) -> int:
        return int(self.ivf.d)

    @property
    def ntotal(self) -> int:
        return int(self.ivf.ntotal) - len(self._removed) + int(self._delta.ntotal)

    def ids(self) -> np.ndarray:
        """Every id held: the mapped ones not removed, then the delta's."""
        base = _list_ids(self.ivf)
        base = base[~np.isin(base, self._removed)]
        return np.concatenate([base, _list_ids(self._delta)])

    def add_with_ids(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self._delta.add_with_ids(vectors, ids)

    def remove_ids(self, ids: np.ndarray) -> int:
        """Remove ids from the delta, and hide those of the mapped lists; returns how
        many were held."""
        removed = int(self._delta.remove_ids(ids))
        base = self._sorted_base_ids()
        position = np.minimum(np.searchsorted(base, ids), max(len(base) - 1, 0))
        held = np.unique(ids[(base[position] == ids)] if len(base) else ids[:0])
        hidden = held[~np.isin(held, self._removed)]
        if len(hidden):
            self._removed = np.union1d(self._removed, hidden)
            inner = faiss.IDSelectorBatch(self._removed)
            self._not_removed = faiss.IDSelectorNot(inner)
            self._not_removed.referenced = inner  # keep the inner selector alive
        return removed + len(hidden)

    def search(self, queries: np.ndarray, k: int, params: faiss.SearchParametersIVF):
        """The k best of the mapped lists (removed ids excluded) and of the delta, as
        faiss's `search` returns them (scores and ids, -1 where fewer were found)."""
        base_params = faiss.SearchParametersIVF(nprobe=params.nprobe)
        allowed = params.sel
        if self._not_removed is not None and allowed is not None:
            both = faiss.IDSelectorAnd(allowed, self._not_removed)
            base_params.sel = both
        else:
            base_params.sel = self._not_removed if allowed is None else allowed
        scores, ids = self._base.search(queries, k, params=base_params)
        if not self._delta.ntotal:
            return scores, ids
        delta_scores, delta_ids = self._delta.search(queries, k, params=params)
        scores = np.concatenate([scores, delta_scores], axis=1)
        ids = np.concatenate([ids, delta_ids], axis=1)
        # Best first; found before not found (-1 ids score -inf in faiss's IP search).
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)

    def reconstruct(self, chunk_id: int) -> np.ndarray:
        """The decoded vector of one id (from the delta if it was added since)."""
        if self._delta.ntotal:
            try:
                return self._delta.reconstruct(chunk_id)
            except RuntimeError:  # not in the delta
                pass
        if chunk_id in self._removed:
            raise KeyError(chunk_id)
        ids, lists, offsets = self._locations()
        at = int(np.searchsorted(ids, chunk_id))
        if at == len(ids) or ids[at] != chunk_id:
            raise KeyError(chunk_id)
        vector = np.empty(self.d, np.float32)
        self.ivf.reconstruct_from_offset(int(lists[at]), int(offsets[at]),
                                         faiss.swig_ptr(vector))
        return vector

    def folded(self) -> faiss.Index:
        """One in-memory IVF index holding what this one holds (for saving)."""
        index = _empty_like(self.ivf, own_quantizer=True, direct_map=False)
        target = index.invlists
        total = 0
        for source in (self.ivf, self._delta):
            lists = source.invlists
            code_size = lists.code_size
            for list_no in range(source.nlist):
                size = lists.list_size(list_no)
                if not size:
                    continue
                ids = faiss.rev_swig_ptr(lists.get_ids(list_no), size)
                codes = faiss.rev_swig_ptr(lists.get_codes(list_no), size * code_size)
                codes = codes.reshape(size, code_size)
                if source is self.ivf and len(self._removed):
                    keep = ~np.isin(ids, self._removed)
                    ids, codes = ids[keep], codes[keep]
                ids = np.ascontiguousarray(ids, dtype=np.int64)
                codes = np.ascontiguousarray(codes)
                target.add_entries(list_no, len(ids), faiss.swig_ptr(ids),
                                   faiss.swig_ptr(codes))
                total += len(ids)
        index.ntotal = total
        return index

    def _sorted_base_ids(self) -> np.ndarray:
        with self._lazy:
            if self._base_ids is None:
                self._base_ids = np.sort(_list_ids(self.ivf))
            return self._base_ids

    def _locations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lazy:
            if self._where is None:
                lists = self.ivf.invlists
                sizes = [lists.list_size(i) for i in range(self.ivf.nlist)]
                list_of = np.repeat(np.arange(self.ivf.nlist, dtype=np.int32), sizes)
                offset_of = np.concatenate([np.arange(size, dtype=np.int32)
                                            for size in sizes] or [np.zeros(0, np.int32)])
                ids = _list_ids(self.ivf)
                order = np.argsort(ids)
                self._where = (ids[order], list_of[order], offset_of[order])
            return self._where


def _empty_like(ivf, own_quantizer: bool = False, direct_map: bool = True):
    """An empty IVF-SQ index trained as `ivf` is: the same quantizer (shared, or a copy
    the new index owns) and the same scalar quantizer."""
    quantizer = faiss.clone_index(ivf.quantizer) if own_quantizer else ivf.quantizer
    index = faiss.IndexIVFScalarQuantizer(quantizer, ivf.d, ivf.nlist, ivf.sq.qtype,
                                          ivf.metric_type, ivf.by_residual)
    index.sq = ivf.sq  # the trained ranges (copied)
    index.is_trained = True
    if own_quantizer:
        index.own_fields = True
        quantizer.this.disown()
    if direct_map:
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


def _list_ids(ivf) -> np.ndarray:
    lists = ivf.invlists
    parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
             for i in range(ivf.nlist) if lists.list_size(i)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _give_back_freed_memory() -> None:
    """Return freed heap pages to the system (glibc keeps them otherwise)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the memory is reused, not returned
        pass
