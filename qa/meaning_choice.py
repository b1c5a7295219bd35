"""A close call between a document's best sentences, settled with the model's help.

qa.sentence_choice scores sentences by the words they share with the question; an
answer that shares none (生活习性 -> 栖息在礁区……) loses to a sentence that repeats
the question's subject. When the best sentence of the rank-1 document wins by less
than MARGIN, its best `size` sentences (by that score) are compared with the question by
the model: each sentence's cosine to the question's vector, times WEIGHT, is added to its
score and the best of them wins. The model is asked only on close calls, for one
document, for at most `size` sentences (each embedded alone and kept: qa.sentence_vectors).

Each sentence is embedded after its document's title, as chunks are. Alone, the sentence
that names the subject (黑褐新箭雀鲷，又称……) is the closest to a question that names it
too, and beats the answer (水深2至23公尺。); with the title in front of every sentence the
subject is in all of them, and what tells them apart is what the question asks about.

MARGIN and WEIGHT (and the default `size`, `retrieval.meaning_sentences: 4`) were chosen
on the tuning part of the benchmarks by scripts/sentence_meaning.py: the best setting
there that sends at most about one sentence a question to the model. About a quarter of
Chinese questions ask it, for about one sentence a question on average, about 14 ms of
CPU each with two model threads (README, "sentence@1 and the model's meaning").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qa.sentence_choice import SentenceRow, row_score

# Only a best sentence that leads the next by less than this (in qa.sentence_choice's
# score units) asks the model.
MARGIN = 2.0
# The weight of a sentence's cosine to the question in its score.
WEIGHT = 160.0


def close_contenders(rows: Sequence[SentenceRow], size: int, margin: float | None = None
                     ) -> list[int]:
    """The positions of the best `size` rows by score when the best leads the next by
    less than `margin` (MARGIN if None); empty otherwise (or when there is one row)."""
    margin = MARGIN if margin is None else margin
    scores = [row_score(row) for row in rows]
    order = sorted(range(len(rows)), key=lambda i: (-scores[i], i))
    if size < 2 or len(order) < 2 or scores[order[0]] - scores[order[1]] >= margin:
        return []
    return order[:size]


def best_row_by_meaning(
    rows: Sequence[SentenceRow], sentences: Sequence[str],
    similarity: Callable[[list[str]], Sequence[float]], size: int,
    title: str | None = None, margin: float | None = None, weight: float | None = None,
) -> SentenceRow | None:
    """The best row with the model's cosine added, among the close contenders (see
    close_contenders; `sentences[i]` is row i's text, embedded after `title` if any);
    None when the call is not close. MARGIN and WEIGHT unless given."""
    weight = WEIGHT if weight is None else weight
    contenders = close_contenders(rows, size, margin)
    if not contenders:
        return None
    cosines = list(similarity([embedded_text(sentences[i], title) for i in contenders]))
    best = max(range(len(contenders)),
               key=lambda k: (row_score(rows[contenders[k]]) + weight * cosines[k], -k))
    return rows[contenders[best]]


def embedded_text(sentence: str, title: str | None) -> str:
    """What the model embeds for a sentence: its document's title (if any), then it, as
    qa.ingest.chunker embeds a chunk."""
    return f"{title}\n{sentence}" if title else sentence
