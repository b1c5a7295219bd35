"""The local engine's vector index as a cache of the store's vectors, and its files.

A store folder may hold `vectors-<generation>.faiss`: the vector index as it was at that
generation. Opening takes the newest readable one at or below the store's generation
(an approximate one memory-mapped, an exact one read into memory) and applies the
store's changes since; without one, or when the store has grown or shrunk past what
its kind suits, the index is built from the store. Saving writes the current index
whole (a mapped one folded together with the changes held beside it) and drops the
older files; the engine then maps the new file in place of what it held.

faiss itself stays behind qa.index.vectors: this module handles files and generations.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from qa.config import Config
from qa.index.store import StoreReader
from qa.index.vectors import VectorIndex

logger = logging.getLogger(__name__)

_CACHE_NAME = re.compile(r"^vectors-(\d+)\.faiss$")
# A watching server saves the vector cache once it is this many chunks (or 1%) behind.
UNSAVED_CHANGES = 2000


def open_vectors(store_dir: Path, reader: StoreReader, generation: int, dimension: int,
                 config: Config) -> tuple[VectorIndex, int]:
    """The vector index of the store `reader` reads (inside its transaction, at
    `generation`), from the newest cache file when one suits, with the count of chunks
    changed since that file was saved (all of them if none was used)."""
    vectors, cached_generation = _load_cache(store_dir, generation, dimension)
    if vectors is not None:
        behind = apply_changes(vectors, reader.removed_since(cached_generation),
                               reader.vectors_since(cached_generation))
        if vectors.suits(len(vectors), config.index.ann_min_chunks):
            return vectors, behind
    vectors = build_vectors(reader, dimension, config)
    return vectors, len(vectors)


def build_vectors(reader: StoreReader, dimension: int, config: Config) -> VectorIndex:
    """A vector index of the kind suited to the store's size, from its vectors."""
    _, chunks = reader.counts()
    return VectorIndex.build(dimension, chunks, lambda: reader.vectors_since(0),
                             config.index.ann_min_chunks)


def apply_changes(vectors: VectorIndex, removed: list[int],
                  batches: Iterable[tuple[list[int], np.ndarray]]) -> int:
    """Remove `removed`, then put each batch's vectors under its ids (replacing any held:
    applying the same changes twice does not add twice); returns the chunks changed."""
    vectors.remove(removed)
    changed = len(removed)
    for ids, batch in batches:
        vectors.remove(ids)
        vectors.add(ids, batch)
        changed += len(ids)
    return changed


def far_behind(unsaved: int, count: int) -> bool:
    """Whether an index of `count` vectors with `unsaved` changes since its cache file
    was written is due a new one (a server saves it then, so that a restart does not
    read every vector written since)."""
    return unsaved >= max(UNSAVED_CHANGES, count // 100)


def write_cache(store_dir: Path, generation: int, vectors: VectorIndex) -> Path:
    """Write `vectors` as the cache of `generation` unless that file exists (files are
    written whole and named by generation, so no writer lock is needed)."""
    path = store_dir / f"vectors-{generation}.faiss"
    if not path.exists():
        vectors.save(path)
    return path


def drop_other_caches(store_dir: Path, kept: Path) -> None:
    """Remove every cache file of the store but `kept`."""
    for other in store_dir.glob("vectors-*.faiss"):
        if other != kept:
            other.unlink(missing_ok=True)


def map_cache(path: Path, count: int) -> VectorIndex | None:
    """The cache file just saved, memory-mapped, if it holds `count` vectors (None if it
    cannot be read, or is another writer's file for this generation that differs)."""
    try:
        mapped = VectorIndex.load(path)
    except (ValueError, OSError) as exc:
        logger.warning("could not map the vector cache %s (%s)", path.name, exc)
        return None
    return mapped if len(mapped) == count else None


def _load_cache(store_dir: Path, generation: int,
                dimension: int) -> tuple[VectorIndex | None, int]:
    """The newest readable FAISS cache at or below `generation`, with its generation."""
    candidates = []
    for path in store_dir.glob("vectors-*.faiss"):
        match = _CACHE_NAME.match(path.name)
        if match and int(match.group(1)) <= generation:
            candidates.append((int(match.group(1)), path))
    for cached, path in sorted(candidates, reverse=True):
        try:
            vectors = VectorIndex.load(path)
        except (ValueError, OSError) as exc:
            logger.warning("ignoring the vector cache %s (%s); rebuilding it from the store",
                           path.name, exc)
            continue
        if vectors.dimension == dimension:
            return vectors, cached
    return None, 0
