"""A close call between a document's best sentences, settled with the model's help.

qa.sentence_choice scores sentences by the words they share with the question; an
answer that shares none (生活习性 -> 栖息在礁区……) loses to a sentence that repeats
the question's subject. When the best sentence of the rank-1 document wins by less
than MARGIN, its best `size` sentences (by that score) are compared with the question by
the model: each sentence's cosine to the question's vector, times WEIGHT, is added to its
score and the best of them wins. The model is asked only on close calls, for one
document, for at most `size` sentences (each embedded alone and kept: qa.sentence_vectors).

MARGIN and WEIGHT were chosen on the tuning part of the benchmarks by
scripts/sentence_meaning.py (README, "sentence@1 and the model's meaning").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qa.sentence_choice import SentenceRow, row_score

# Only a best sentence that leads the next by less than this (in qa.sentence_choice's
# score units) asks the model.
MARGIN = 2.0
# The weight of a sentence's cosine to the question in its score.
WEIGHT = 20.0


def close_contenders(rows: Sequence[SentenceRow], size: int, margin: float = MARGIN
                     ) -> list[int]:
    """The positions of the best `size` rows by score when the best leads the next by
    less than `margin`; empty otherwise (or when there is one row)."""
    scores = [row_score(row) for row in rows]
    order = sorted(range(len(rows)), key=lambda i: (-scores[i], i))
    if size < 2 or len(order) < 2 or scores[order[0]] - scores[order[1]] >= margin:
        return []
    return order[:size]


def best_row_by_meaning(
    rows: Sequence[SentenceRow], sentences: Sequence[str],
    similarity: Callable[[list[str]], Sequence[float]], size: int,
    margin: float = MARGIN, weight: float = WEIGHT,
) -> SentenceRow | None:
    """The best row with the model's cosine added, among the close contenders (see
    close_contenders; `sentences[i]` is row i's text); None when the call is not close."""
    contenders = close_contenders(rows, size, margin)
    if not contenders:
        return None
    cosines = list(similarity([sentences[i] for i in contenders]))
    best = max(range(len(contenders)),
               key=lambda k: (row_score(rows[contenders[k]]) + weight * cosines[k], -k))
    return rows[contenders[best]]
