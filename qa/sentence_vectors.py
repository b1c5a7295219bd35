"""Vectors of the sentences the model compares with a question, when it chooses a
passage's answering sentence (qa.highlight's fallback, for passages that share no word
with the question).

Each sentence is embedded on its own. With the int8 model a vector depends on what it is
embedded with (activations are quantised per batch, padding included), so embedded
alone a sentence's vector depends on its text only and can be kept: a server meets the
same passages question after question. Alone also means no padding: on held-out
CMRC/DRCD questions it needed 7–11% less CPU than one call for a request's sentences,
chose the same sentence for 291 of 300, and as often the one holding the answer
(scripts/sentence_fallback.py). The kept vectors are bounded by count (least recently
used dropped), keyed by the sentence text, so a rewritten passage never meets a stale
vector.

Questions are kept the same way (`QuestionVectors`): a server is asked the same question
again and again (the popular ones of the day), and its vector, embedded alone too, depends
on its text only. A question's embedding is the largest part of its CPU after the vector
search (about 6 ms of a 30-40 ms question at 1M chunks).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from qa.embedder import Embedder

# 384 floats a sentence: about 1.6 kB each with its key, 6.5 MB in all.
CAPACITY = 4096
# Questions kept: about 1.6 MB.
QUESTIONS = 1024


class SentenceVectors:
    """Each sentence's passage vector, embedded alone, the last `capacity` kept."""

    def __init__(self, embedder: Embedder, capacity: int = CAPACITY):
        self._embedder = embedder
        self.capacity = capacity
        self._kept: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def vectors(self, sentences: Sequence[str]) -> np.ndarray:
        """One normalised row per sentence, in order."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for sentence in sentences:
                vector = self._kept.get(sentence)
                if vector is not None:
                    self._kept.move_to_end(sentence)
                    found[sentence] = vector
        for sentence in dict.fromkeys(s for s in sentences if s not in found):
            found[sentence] = self._embed_alone(sentence)
            self._keep(sentence, found[sentence])
        if not sentences:
            return np.zeros((0, self._embedder.dimension), dtype=np.float32)
        return np.vstack([found[s] for s in sentences])

    def _embed_alone(self, text: str) -> np.ndarray:
        return self._embedder.embed_passages([text])[0]

    def _keep(self, sentence: str, vector: np.ndarray) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._kept[sentence] = vector
            self._kept.move_to_end(sentence)
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)


class QuestionVectors(SentenceVectors):
    """Each question's query vector (`embed_queries`), embedded alone, the last
    `capacity` kept."""

    def __init__(self, embedder: Embedder, capacity: int = QUESTIONS):
        super().__init__(embedder, capacity)

    def _embed_alone(self, text: str) -> np.ndarray:
        return self._embedder.embed_queries([text])[0]
