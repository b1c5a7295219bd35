"""Which sentence of a document answers the question, among its candidate chunks.

Every sentence of every candidate chunk of a document (the best POOL_LIMIT ranked)
is described by a handful of features, and a linear score over them picks the
answering sentence; its chunk is the passage shown for the document. The features:

- coverage: the share of the question's keyword weight (idf) the sentence holds,
  words carried from earlier sentences and chunks included (qa.highlight);
- own: the same share without anything carried in;
- cue: it holds the kind of thing the question asks for (qa.answer_cues);
- bigrams: the share of the question's character bigrams it holds;
- best chunk: its chunk is the document's best-ranked candidate;
- chunk cosine: its chunk's cosine to the question less the best of the document's
  candidate chunks (meaning, where the words tie: 生活习性 -> 觅食);
- chunk keyword: its chunk's keyword score over the document's best;
- first: it opens its chunk;
- neighbour: the larger own share of the sentence before and after it (the
  answer often sits next to the sentence that repeats the question);
- length: log of its length in characters;
- distinctive: its own share of the question's keyword weight where each word
  weighs less the more of the document's sentences name it: the subject of an
  article (邹游) is in most of its sentences and tells none of them apart, the
  word the question asks about (职业, 落第) in one;
- distinctive characters: the same over the question's Chinese characters, each
  weighing the share of the document's sentences without it (食物 -> 猎食);
- lead: it opens the document (its first chunk's first sentence), where an
  article says what its subject is (X是指……);
- chunk score: its chunk's retrieval score over the document's best;
- opening chunk: its chunk is the document's first, where an article (or a news
  report's lead) puts the main facts;
- cue near: for a question asking when or how many, the sentence has a new time or
  number within CUE_DISTANCE characters of a question word it names;
- slot: the share of the question's content next to its question phrase (水深 in
  水深是多少) that the sentence holds (qa.answer_slot);
- definition: for a question asking what something is (定义, 什么是), the sentence is
  worded as a definition (是指, 是一种, 意为; qa.answer_cues).

The weights are a conditional logistic regression (softmax over a question's
sentences) fitted by scripts/fit_sentence_choice.py on the tuning part of the
benchmarks (CMRC trial, the even-numbered articles of CMRC dev, the news dev
file); the rest is held out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa import highlight
from qa.answer_cues import (
    NUMBER,
    PLACE,
    TIME,
    WHO,
    asks_definition,
    gives_definition,
    mention_spans,
    question_kind,
    sentence_has_cue,
)
from qa.answer_slot import slot_neighbours, slot_share
from qa.highlight import Span, WordSource
from qa.normalize import fold

FEATURES = ("coverage", "own", "cue", "bigrams", "best chunk", "chunk cosine",
            "chunk keyword", "first", "neighbour", "length", "distinctive",
            "distinctive characters", "lead", "chunk score", "opening chunk",
            "cue near", "slot", "definition")
# Fitted by scripts/fit_sentence_choice.py (see the module docstring).
WEIGHTS = (13.267, -10.385, 1.679, 2.402, 0.614, 10.716, -0.102, 0.509, 0.872, -0.318, 4.908,
           5.362, 0.157, -1.118, 1.294, 1.276, 1.434, 2.137)
# "cue near": a time or number the question asks for within this many characters of a
# question word the sentence names (全长364.6公里, not a length elsewhere in it).
CUE_DISTANCE = 12
# The cue (part-of-speech tagging for 谁 and 哪里) is looked for only in sentences
# whose coverage is within this much of the best: tagging costs more than the rest.
CUE_RANGE = 0.5


@dataclass(frozen=True)
class ChunkCandidate:
    """One candidate chunk of a document: its text, place in the document and scores."""

    text: str
    ordinal: int
    score: float
    vector: float = 0.0
    keyword: float = 0.0


@dataclass(frozen=True)
class SentenceRow:
    """A sentence of a candidate chunk: which chunk (index in the candidates), its span
    in the chunk's text and its features (in FEATURES order)."""

    chunk: int
    span: Span
    features: tuple[float, ...]


def sentence_rows(
    question: str, idf: dict[str, float], tokenizer: WordSource,
    chunks: Sequence[ChunkCandidate],
) -> list[SentenceRow]:
    """The sentences of a document's candidate chunks (best ranked first) with their
    features."""
    folded_question = fold(question)
    asked = highlight._Question(
        folded_question, highlight._without_question_words(folded_question, idf),
        frozenset(highlight.question_terms(question)), question_kind(question))
    total = sum(asked.idf.values())
    best_vector = max(c.vector for c in chunks)
    best_keyword = max(c.keyword for c in chunks)
    ordinals = [c.ordinal for c in chunks]
    texts = [c.text for c in chunks]
    rows: list[SentenceRow] = []
    pending: list[tuple[int, str, list[float]]] = []
    named: list[dict[str, float]] = []
    leads: list[float] = []
    for index, chunk in enumerate(chunks):
        context = earlier_text(ordinals, texts, chunk.ordinal)
        inherited = highlight._context_credit(asked, tokenizer, context) if context else {}
        spans = highlight.passage_sentences(chunk.text)
        folded = [fold(chunk.text[s:e]) for s, e in spans]
        coverage, own, found = _coverages(asked, tokenizer, folded, inherited, total)
        for position, span in enumerate(spans):
            named.append(found[position])
            neighbours = [own[p] for p in (position - 1, position + 1) if 0 <= p < len(spans)]
            features = [
                coverage[position], own[position], 0.0,
                highlight.bigram_share(asked.bigrams, folded[position]),
                1.0 if index == 0 else 0.0,
                chunk.vector - best_vector,
                chunk.keyword / best_keyword if best_keyword > 0 else 0.0,
                1.0 if position == 0 else 0.0,
                max(neighbours, default=0.0),
                math.log1p(span[1] - span[0]),
            ]
            lead = 1.0 if position == 0 and chunk.ordinal == 0 else 0.0
            pending.append((len(rows), folded[position], features))
            leads.append(lead)
            rows.append(SentenceRow(index, span, ()))
    for (_, _, features), share in zip(pending, _distinctive(asked.idf, named), strict=True):
        features.append(share)
    characters = _question_characters(folded_question)
    sentences = [folded for _, folded, _ in pending]
    for (_, _, features), share in zip(
            pending, _distinctive(characters, [{c: 1.0 for c in characters if c in sentence}
                                               for sentence in sentences]), strict=True):
        features.append(share)
    for (_, _, features), lead in zip(pending, leads, strict=True):
        features.append(lead)
    best_score = max(c.score for c in chunks)
    for index, _, features in pending:
        chunk = chunks[rows[index].chunk]
        features.append(chunk.score / best_score if best_score > 0 else 0.0)
        features.append(1.0 if chunk.ordinal == 0 else 0.0)
    for (_, folded_sentence, features), found in zip(pending, named, strict=True):
        features.append(_cue_near(asked, folded_sentence, found))
    if asked.kind is not None and pending:
        top = max(features[0] for _, _, features in pending)
        for _, folded_sentence, features in pending:
            if features[0] > 0 and features[0] >= top - CUE_RANGE:
                words = (tokenizer.tagged_words(folded_sentence)
                         if asked.kind in (WHO, PLACE) else ())
                if sentence_has_cue(asked.kind, folded_sentence, words, asked.folded):
                    features[2] = 1.0
    neighbours = slot_neighbours(folded_question)
    defining = asks_definition(folded_question)
    for _, folded_sentence, features in pending:
        features.append(slot_share(neighbours, folded_sentence))
        features.append(1.0 if defining and gives_definition(folded_sentence) else 0.0)
    return [SentenceRow(row.chunk, row.span, tuple(features))
            for row, (_, _, features) in zip(rows, pending, strict=True)]


def _cue_near(asked: highlight._Question, sentence: str, found: dict[str, float]) -> float:
    """1 when a time or number the question asks for sits near a question word the
    (folded) sentence names, else 0."""
    if asked.kind not in (TIME, NUMBER) or not found:
        return 0.0
    cues = mention_spans(asked.kind, sentence, asked.folded)
    if not cues:
        return 0.0
    places = [m.start() for term in found for m in re.finditer(re.escape(term), sentence)]
    return 1.0 if any(abs(start - p) <= CUE_DISTANCE or abs(end - p) <= CUE_DISTANCE
                      for start, end in cues for p in places) else 0.0


def earlier_text(ordinals: Sequence[int], texts: Sequence[str], ordinal: int) -> str:
    """The texts of the chunks before `ordinal` (of one document), in document order:
    the question words they name carry into the chunk (qa.highlight.CONTEXT_CARRY)."""
    return "\n".join(text for o, text in sorted(zip(ordinals, texts, strict=True))
                     if o < ordinal)


def _question_characters(folded_question: str) -> dict[str, float]:
    """The question's Chinese characters outside its question phrases and function
    characters, each weighing 1."""
    stripped = highlight._QUESTION_PHRASE.sub(" ", folded_question)
    return {c: 1.0 for c in stripped if highlight._CJK.fullmatch(c) and c not in _FUNCTION}


# Characters that carry no content on their own in a question.
_FUNCTION = frozenset("的了是在有和与及或被把将为于从对也都就而之其这那个一中上下吗呢吧啊")


def _distinctive(idf: dict[str, float], named: list[dict[str, float]]) -> list[float]:
    """Each sentence's share of the question's keyword weight, a word weighing its idf
    times the share of the document's sentences that do not name it."""
    count = len(named)
    weights = {t: w * (1 - sum(t in found for found in named) / count) for t, w in idf.items()}
    total = sum(weights.values())
    if total <= 0:
        return [0.0] * count
    return [sum(weights[t] * c for t, c in found.items()) / total for found in named]


def _coverages(
    asked: highlight._Question, tokenizer: WordSource, folded: list[str],
    inherited: dict[str, float], total: float,
) -> tuple[list[float], list[float], list[dict[str, float]]]:
    """Each sentence's share of the question's keyword weight, with words carried from
    earlier sentences and chunks (as qa.highlight scores it) and without, and the words
    it names itself (with their credit)."""
    carried = dict(inherited)
    coverage, own, named = [], [], []
    for position, sentence in enumerate(folded):
        found = highlight.matched_terms(asked.folded, asked.idf, sentence,
                                        tokenizer.tokens(sentence, already_folded=True))
        credit = {t: max(found.get(t, 0.0), carried.get(t, 0.0))
                  for t in set(found) | set(carried)}
        named.append(found)
        share = highlight.LEAD_CARRY if position == 0 else highlight.CARRY
        for term, value in found.items():
            carried[term] = max(carried.get(term, 0.0), share * value)
        if total > 0:
            coverage.append(sum(asked.idf[t] * c for t, c in credit.items()) / total)
            own.append(sum(asked.idf[t] * c for t, c in found.items()) / total)
        else:
            coverage.append(0.0)
            own.append(0.0)
    return coverage, own, named


def shares_words(row: SentenceRow) -> bool:
    """Whether the sentence holds any of the question's words or character bigrams
    (carried ones included); when no sentence does, the model may choose instead."""
    return row.features[0] > 0 or row.features[3] > 0


def row_score(row: SentenceRow, weights: Sequence[float] = WEIGHTS) -> float:
    """A sentence's score: its features weighed."""
    return sum(w * f for w, f in zip(weights, row.features, strict=True))


def best_row(rows: Sequence[SentenceRow], weights: Sequence[float] = WEIGHTS) -> SentenceRow:
    """The highest-scoring sentence; the earliest (best chunk, first sentence) wins a tie."""
    best = max(range(len(rows)), key=lambda i: (row_score(rows[i], weights), -i))
    return rows[best]
