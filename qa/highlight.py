"""Which sentence of a passage answers the question best."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from qa.ingest.sentences import sentence_spans

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_LATIN_OR_NUMBER = re.compile(r"[a-z0-9][a-z0-9.%]*", re.IGNORECASE)
# Question words carry no evidence: an answer sentence rarely repeats them.
_QUESTION_WORDS = re.compile(r"什么|多少|哪些|哪个|哪里|哪儿|怎么|怎样|如何|为什么|是否|吗|呢")


def question_terms(question: str) -> set[str]:
    """Character bigrams of the question's Chinese runs plus its Latin words and numbers."""
    text = _QUESTION_WORDS.sub(" ", unicodedata.normalize("NFKC", question).lower())
    terms: set[str] = set()
    for run in _CJK.findall(text):
        if len(run) == 1:
            terms.add(run)
        terms.update(run[i : i + 2] for i in range(len(run) - 1))
    terms.update(_LATIN_OR_NUMBER.findall(text))
    return terms


def overlap_scores(question: str, sentences: list[str]) -> list[float]:
    """How many of the question's terms each sentence contains (longer terms count more)."""
    terms = question_terms(question)
    scores = []
    for sentence in sentences:
        folded = unicodedata.normalize("NFKC", sentence).lower()
        scores.append(float(sum(len(term) for term in terms if term in folded)))
    return scores


def passage_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of a passage, ignoring the line breaks between merged paragraphs."""
    spans = []
    offset = 0
    for line in text.split("\n"):
        for start, end in sentence_spans(line):
            # Leading/trailing spaces are not part of the sentence a reader sees.
            piece = line[start:end]
            left = len(piece) - len(piece.lstrip())
            right = len(piece.rstrip())
            if right > left:
                spans.append((offset + start + left, offset + start + right))
        offset += len(line) + 1
    return spans or [(0, len(text))]


def best_span(spans: list[tuple[int, int]], scores: Sequence[Any]) -> tuple[int, int]:
    """The span with the highest score; the earliest wins a tie."""
    best = max(range(len(spans)), key=lambda i: (scores[i], -i))
    return spans[best]
