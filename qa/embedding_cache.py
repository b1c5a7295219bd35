"""An embedder wrapper that remembers vectors by content hash, in a SQLite file.

A second `qa index` or `qa eval` with the same model embeds only what changed.
The key covers the model name, the prompt kind and the exact text.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.embedder import Embedder, ProgressCallback

logger = logging.getLogger(__name__)

SCHEMA = "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)"


class CachedEmbedder:
    """Looks vectors up before embedding; stores what it had to embed."""

    def __init__(self, inner: Embedder, path: Path, salt: str = ""):
        """`salt` names whatever else changes the vectors (the prompts, say)."""
        self.inner = inner
        self._salt = salt
        self.name = inner.name
        self.dimension = inner.dimension
        self.path = path
        self._lock = threading.Lock()
        self._db = _open_cache(path)
        # Passages found in the cache and passages actually embedded, since creation.
        self.reused = 0
        self.embedded = 0

    def close(self) -> None:
        """Close the cache file."""
        with self._lock:
            self._db.close()

    def _key(self, kind: str, text: str) -> bytes:
        return hashlib.sha256(f"{self.name}\0{self._salt}\0{kind}\0{text}".encode()).digest()

    def _set_aside(self, exc: sqlite3.DatabaseError) -> None:
        """A cache damaged while in use: move it aside and go on with an empty one."""
        self._db.close()
        self._db = _open_cache(self.path, damaged=exc)

    def _lookup(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        try:
            return self._lookup_in_cache(keys)
        except sqlite3.DatabaseError as exc:
            with self._lock:
                self._set_aside(exc)
            return {}

    def _lookup_in_cache(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for begin in range(0, len(keys), 500):
                part = keys[begin : begin + 500]
                rows = self._db.execute(
                    f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        return {k: v for k, v in found.items() if v.shape == (self.dimension,)}

    def _store(self, keys: list[bytes], vectors: np.ndarray) -> None:
        rows = [(k, np.asarray(v, dtype=np.float32).tobytes())
                for k, v in zip(keys, vectors, strict=True)]
        with self._lock:
            try:
                with self._db:
                    self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)
            except sqlite3.DatabaseError as exc:
                # The vectors were computed; losing the cache only costs the next run time.
                if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc):
                    logger.warning("cannot write the vector cache %s (%s)", self.path, exc)
                    return
                self._set_aside(exc)

    def _embed(self, kind: str, texts: Sequence[str], progress: ProgressCallback | None):
        texts = list(texts)
        keys = [self._key(kind, t) for t in texts]
        cached = self._lookup(keys)
        result = np.zeros((len(texts), self.dimension), dtype=np.float32)
        missing = [i for i, k in enumerate(keys) if k not in cached]
        for i, key in enumerate(keys):
            if key in cached:
                result[i] = cached[key]
        if kind == "passage":
            self.reused += len(texts) - len(missing)
            self.embedded += len(missing)
        if progress and len(texts) > len(missing):
            progress(len(texts) - len(missing))
        if missing:
            fresh_texts = [texts[i] for i in missing]
            if kind == "query":
                fresh = self.inner.embed_queries(fresh_texts)
            else:
                fresh = self.inner.embed_passages(fresh_texts, progress=progress)
            result[missing] = fresh
            self._store([keys[i] for i in missing], fresh)
        return result

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors, from the cache where possible."""
        return self._embed("query", texts, None)

    def embed_passages(
        self, texts: Sequence[str], progress: ProgressCallback | None = None
    ) -> np.ndarray:
        """Passage vectors, from the cache where possible; progress counts cached ones too."""
        return self._embed("passage", texts, progress)


def _open_cache(path: Path, damaged: Exception | None = None) -> sqlite3.Connection:
    """The cache file, checked; a damaged one is renamed `<name>.corrupt-<time>` (kept for
    a look, never read again) and an empty cache starts in its place. A folder that cannot
    be written gives an in-memory cache, so indexing still works, only slower next time."""
    for attempt in range(2):
        if damaged is not None:
            aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
            try:
                path.replace(aside)
                for suffix in ("-wal", "-shm", "-journal"):
                    path.with_name(path.name + suffix).unlink(missing_ok=True)
                logger.warning("the vector cache %s is damaged (%s); moved it to %s and "
                               "starting an empty one", path, damaged, aside.name)
            except OSError as exc:
                logger.warning("the vector cache %s is damaged (%s) and cannot be moved "
                               "aside (%s); using no cache file", path, damaged, exc)
                break
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(path), check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            logger.warning("cannot open the vector cache %s (%s); using no cache file",
                           path, exc)
            break
        try:
            db.execute(SCHEMA)
            # Reads the schema and the first rows: cheap, and catches garbage and zeros.
            db.execute("SELECT key, vector FROM vectors LIMIT 1").fetchall()
            return db
        except sqlite3.DatabaseError as exc:
            db.close()
            if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc):
                logger.warning("cannot write the vector cache %s (%s); using no cache file",
                               path, exc)
                break
            damaged = exc
            if attempt:
                break
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute(SCHEMA)
    return db
