"""Which of a document's chunks stands for it in the answer.

A long article is cut into chunks, and the chunk that ranks first is often the one
that names the subject (张裔，字君嗣……) while the answer is in the next one, which
does not repeat it. So when several chunks of a document are among the candidates,
the one whose answering sentence scores best (qa.highlight's own score, cues
included, with the words its earlier chunks name carried in) stands for the
document, at the rank of the document's best chunk. The ranking of documents does
not change, and no text is shown twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qa.highlight import Span, WordSource, scored_answer_spans

# A later-ranked chunk replaces the best-ranked one only when its answering sentence
# scores at least this much higher, and its own retrieval score is at least this
# share of the best chunk's. Chosen on the tuning halves (even-numbered articles) of
# CMRC dev and DRCD dev with scripts/tune_highlight.py; the odd ones were held out.
MARGIN = 0.1
SCORE_SHARE = 0.0
# At most this many of a document's candidate chunks (the best ranked) are looked at:
# each costs a highlight.
POOL_LIMIT = 6


def chosen_chunk(retrieval: Sequence[float], sentence: Sequence[float]) -> int:
    """The position (0 = best ranked) of the chunk that should stand for a document,
    given its candidate chunks' retrieval scores (best first) and their answering
    sentences' scores."""
    best, to_beat = 0, sentence[0] + MARGIN
    floor = SCORE_SHARE * retrieval[0]
    for position in range(1, len(sentence)):
        if retrieval[position] >= floor and sentence[position] > to_beat:
            best, to_beat = position, sentence[position]
    return best


def earlier_text(ordinals: Sequence[int], texts: Sequence[str], ordinal: int) -> str:
    """The texts of the chunks before `ordinal` (of one document), in document order."""
    return "\n".join(text for o, text in sorted(zip(ordinals, texts, strict=True))
                     if o < ordinal)


def stand_ins(
    question: str, idf: dict[str, float], tokenizer: WordSource,
    found: Sequence[tuple[Any, Any]], documents: Sequence[str],
) -> tuple[list[int], dict[int, tuple[Span, float]]]:
    """Which chunk stands for each of `documents` among the ranked candidates `found`
    ((chunk, candidate) pairs: a chunk has doc_id, ordinal and text, a candidate its
    score).

    Returns the candidates' new order, a permutation of their positions in which each
    document's chosen chunk has taken the place of its best-ranked one (so the order
    of documents is unchanged), and the scored answering sentence of every chunk
    looked at, by its position in `found`.
    """
    positions: dict[str, list[int]] = {}
    for position, (chunk, _) in enumerate(found):
        positions.setdefault(chunk.doc_id, []).append(position)
    pools = [positions[doc][:POOL_LIMIT] for doc in dict.fromkeys(documents)
             if doc in positions]
    looked_at = [position for pool in pools for position in pool]
    contexts = []
    for pool in pools:
        ordinals = [found[i][0].ordinal for i in pool]
        texts = [found[i][0].text for i in pool]
        contexts += [earlier_text(ordinals, texts, ordinal) for ordinal in ordinals]
    scored = dict(zip(looked_at, scored_answer_spans(
        question, idf, tokenizer, [found[i][0].text for i in looked_at], contexts=contexts),
        strict=True))
    order = list(range(len(found)))
    for pool in pools:
        pick = chosen_chunk([found[i][1].score for i in pool], [scored[i][1] for i in pool])
        order[pool[0]], order[pool[pick]] = pool[pick], pool[0]
    return order, scored
