"""Where the answer stands in a question: the content next to its question phrase.

A reader's question often restates the answering sentence with the answer replaced
by a question phrase (蟒鳗生活的水深是多少？ for 水深12至55公尺。; 克什米尔马鹿在外形上
有什么特征？), so the sentence that holds the words on either side of that phrase
(水深; 形上, 特征) is likely to hold the answer too. The neighbours are the first
SLOT_CHARS content characters on each side, skipping fillers such as 是 and 的.
Folded text (qa.normalize.fold) on both sides; only substring searches.
"""

from __future__ import annotations

import re

from qa.highlight import _QUESTION_PHRASE

# Characters that stand next to a question phrase without telling anything (是多少,
# 的是谁, 在哪里): skipped when taking the neighbours.
_FILLER = frozenset("是的在为有了于由被把将又也都就还呢吗啊呀么个")
_CONTENT = re.compile(r"[\u3400-\u9fff\uf900-\ufaffa-z0-9]")
# Characters of content taken on each side of the question phrase.
SLOT_CHARS = 2


def slot_neighbours(folded_question: str) -> tuple[str, ...]:
    """The content before and after the folded question's first question phrase (each
    SLOT_CHARS long; a side with less content is left out)."""
    match = _QUESTION_PHRASE.search(folded_question)
    if not match:
        return ()
    before = [c for c in folded_question[: match.start()] if _CONTENT.fullmatch(c)]
    after = [c for c in folded_question[match.end():] if _CONTENT.fullmatch(c)]
    sides = (_content_edge(before[::-1])[::-1], _content_edge(after))
    return tuple(side for side in sides if len(side) == SLOT_CHARS)


def _content_edge(characters: list[str]) -> str:
    """The first SLOT_CHARS characters once leading fillers are skipped, stopping at a
    filler after the first content character."""
    taken: list[str] = []
    for char in characters:
        if char in _FILLER:
            if taken:
                break
            continue
        taken.append(char)
        if len(taken) == SLOT_CHARS:
            break
    return "".join(taken)


def slot_share(neighbours: tuple[str, ...], folded_sentence: str) -> float:
    """The share of the slot's neighbours (slot_neighbours) the folded sentence holds."""
    if not neighbours:
        return 0.0
    return sum(side in folded_sentence for side in neighbours) / len(neighbours)
