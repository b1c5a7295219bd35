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
