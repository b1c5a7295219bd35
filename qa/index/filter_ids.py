"""The chunk ids a filter keeps, shared by the snapshots of one store generation.

Both searches of a filtered question need the ids of the chunks its filters keep, and
listing them is a join over the documents and their chunks: 9,900 ids for one source
(1% of the documents) at 1,000,008 chunks took about 37 ms, as long as the rest of the
question (README, "Speed: keyword search at a million chunks"). A server asked many
questions with the same filter between two commits lists them once. Every change to the
documents or chunks commits a new generation, so an entry is keyed by the filters and
the generation of the snapshot that listed it, and a newer generation drops the older
entries. The held ids are bounded in number (MAX_IDS in all; a longer list is not kept),
so the memory does not grow with the questions asked.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from qa.filters import Filters

# Ids held in all (a Python int in a list costs about 36 bytes: about 18 MB at most), e.g.
# fifty filters that each keep 1% of a million chunks.
MAX_IDS = 500_000


class FilterIds:
    """Chunk ids per (filters, generation), least recently used dropped first."""

    def __init__(self, max_ids: int = MAX_IDS):
        self.max_ids = max_ids
        self._lock = threading.Lock()
        self._entries: OrderedDict[Filters, list[int]] = OrderedDict()
        self._generation: int | None = None
        self._held = 0

    def get(self, filters: Filters, generation: int,
            listing: Callable[[], list[int]]) -> list[int]:
        """The ids `listing()` gives for `filters` in a snapshot at `generation`, listed
        once per generation. The list is shared: callers must not change it."""
        with self._lock:
            if generation == self._generation and filters in self._entries:
                self._entries.move_to_end(filters)
                return self._entries[filters]
        ids = listing()
        with self._lock:
            if self._generation is None or generation > self._generation:
                self._entries.clear()
                self._held = 0
                self._generation = generation
            if (generation == self._generation and filters not in self._entries
                    and len(ids) <= self.max_ids):
                self._entries[filters] = ids
                self._held += len(ids)
                while self._held > self.max_ids:
                    _, dropped = self._entries.popitem(last=False)
                    self._held -= len(dropped)
        return ids

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
