"""Which of a document's chunks stands for it in the answer, and its answering sentence.

A long article is cut into chunks, and the chunk that ranks first is often the one
that names the subject (张裔，字君嗣……) while the answer is in the next one, which
does not repeat it. So the sentences of all of a document's candidate chunks (the
best POOL_LIMIT ranked) compete (qa.sentence_choice), and the chunk of the winning
sentence stands for the document, at the rank of the document's best chunk. The
ranking of documents does not change, and no text is shown twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from qa.highlight import Span, WordSource
from qa.meaning_choice import best_row_by_meaning
from qa.sentence_choice import (
    ChunkCandidate,
    SentenceRow,
    best_row,
    row_score,
    sentence_rows,
    shares_words,
)

# At most this many of a document's candidate chunks (the best ranked) are looked at:
# each costs a highlight.
POOL_LIMIT = 6
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def stand_ins(
    question: str, idf: dict[str, float], tokenizer: WordSource,
    found: Sequence[tuple[Any, Any]], documents: Sequence[str],
    similarity: Callable[[list[str]], Sequence[float]] | None = None,
    meaning_sentences: int = 0,
) -> tuple[list[int], dict[int, tuple[Span, float]]]:
    """Which chunk stands for each of `documents` among the ranked candidates `found`
    ((chunk, candidate) pairs: a chunk has doc_id, ordinal and text, a candidate its
    score, vector and keyword scores).

    Returns the candidates' new order, a permutation of their positions in which each
    document's chosen chunk has taken the place of its best-ranked one (so the order
    of documents is unchanged), and for every chunk looked at, by its position in
    `found`, its best sentence and a score that is 0 when none of its sentences shares
    anything with the question (then qa.retriever asks the model instead).

    With `similarity` (sentences -> their cosines to the question) and
    `meaning_sentences` of 2 or more, a close call between the first document's best
    sentences is settled with the model (qa.meaning_choice), among that many of them.
    """
    positions: dict[str, list[int]] = {}
    for position, (chunk, _) in enumerate(found):
        positions.setdefault(chunk.doc_id, []).append(position)
    order = list(range(len(found)))
    scored: dict[int, tuple[Span, float]] = {}
    # The weights were fitted on Chinese questions; for one in another language (matched
    # through the English bridge's terms) the best-ranked chunk stays, and only its
    # sentence is chosen.
    limit = POOL_LIMIT if _CJK.search(question) else 1
    for number, doc in enumerate(dict.fromkeys(documents)):
        pool = positions.get(doc, [])[:limit]
        if not pool:
            continue
        rows = sentence_rows(question, idf, tokenizer, [
            ChunkCandidate(found[i][0].text, found[i][0].ordinal, found[i][1].score,
                           getattr(found[i][1], "vector", 0.0),
                           getattr(found[i][1], "keyword", 0.0)) for i in pool])
        winner = None
        if number == 0 and limit > 1 and similarity is not None and meaning_sentences > 1:
            winner = best_row_by_meaning(
                rows, [found[pool[r.chunk]][0].text[r.span[0]:r.span[1]] for r in rows],
                similarity, meaning_sentences, getattr(found[pool[0]][0], "title", None))
        by_meaning = winner is not None
        winner = winner or best_row(rows)
        for index, position in enumerate(pool):
            own = [row for row in rows if row.chunk == index]
            best = winner if winner.chunk == index else best_row(own)
            evidence = _evidence(best, own)
            if by_meaning and best is winner:
                # The model chose this sentence: it stays marked even when its chunk
                # shares no word with the question (the answer 栖息在礁区…… to 生活习性).
                evidence = max(evidence, 1.0)
            scored[position] = (best.span, evidence)
        pick = pool[winner.chunk]
        order[pool[0]], order[pick] = pick, pool[0]
    return order, scored


def _evidence(best: SentenceRow, rows: list[SentenceRow]) -> float:
    """A positive score for a chunk whose sentences share something with the question
    (its best sentence's weighed features, shifted to stay above 0), else 0."""
    if not any(shares_words(row) for row in rows):
        return 0.0
    return max(row_score(best), 0.0) + 1.0
