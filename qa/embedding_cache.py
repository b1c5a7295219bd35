"""An embedder wrapper that remembers vectors by content hash, in a SQLite file.

A second `qa index` or `qa eval` with the same model embeds only what changed.
The key covers the model name, the prompt kind and the exact text.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa.embedder import Embedder, ProgressCallback

SCHEMA = "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)"


class CachedEmbedder:
    """Looks vectors up before embedding; stores what it had to embed."""

    def __init__(self, inner: Embedder, path: Path, salt: str = ""):
        """`salt` names whatever else changes the vectors (the prompts, say)."""
        self.inner = inner
        self._salt = salt
        self.name = inner.name
        self.dimension = inner.dimension
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute(SCHEMA)
        # Passages found in the cache and passages actually embedded, since creation.
        self.reused = 0
        self.embedded = 0

    def close(self) -> None:
        """Close the cache file."""
        with self._lock:
            self._db.close()

    def _key(self, kind: str, text: str) -> bytes:
        return hashlib.sha256(f"{self.name}\0{self._salt}\0{kind}\0{text}".encode()).digest()

    def _lookup(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
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
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                ((k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in zip(keys, vectors,
                                                                                strict=True)),
            )

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
