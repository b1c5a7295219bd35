"""A fast, deterministic stand-in for the embedding model, for unit tests only."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


def store_raw_document(engine, document) -> None:
    """Store a document with no chunks, as it is (to test how its text is shown)."""
    from qa.index.engine import PutDocument

    engine.commit([PutDocument(document, [], np.zeros((0, engine.dimension), np.float32), [],
                               "api")])


class FakeEmbedder:
    """Hashes character unigrams and bigrams into a vector: texts sharing words score higher."""

    def __init__(self, dimension: int = 64, name: str = "fake-embedder"):
        self.name = name
        self.dimension = dimension
        self.passages_embedded = 0

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        grams = list(text) + [text[i : i + 2] for i in range(len(text) - 1)]
        for gram in grams:
            if gram.isspace():
                continue
            digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=4).digest()
            vector[int.from_bytes(digest, "little") % self.dimension] += 1.0
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.vstack([self._vector(t) for t in texts]) if texts else self._empty()

    def embed_passages(self, texts: Sequence[str], progress=None) -> np.ndarray:
        texts = list(texts)
        self.passages_embedded += len(texts)
        if progress and texts:
            progress(len(texts))
        return np.vstack([self._vector(t) for t in texts]) if texts else self._empty()

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.dimension), dtype=np.float32)
