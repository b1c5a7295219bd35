"""Which sentence of a passage answers the question best.

Each sentence of a passage is scored by

- coverage: the share of the question's keyword weight (idf) it holds. A question
  word counts when the sentence has it, or has it as an abbreviation or expansion:
  综试区 in 综合试验区, 跨境电商 in 跨境电子商务 (the shorter word's characters in
  order within a short stretch of one run of Chinese, on either side);
- cue: whether it holds the kind of thing the question asks for, which the question
  does not already contain: a date for 什么时候/哪一年, a number for 多少/几, a person
  or organisation for 谁, a place for 哪里 (qa.answer_cues);
- bigrams: the share of the question's character bigrams it holds, a tie-breaker.

Text is folded with qa.normalize.fold on both sides, as the keyword index does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from qa.answer_cues import question_kind, sentence_has_cue
from qa.ingest.sentences import sentence_spans
from qa.normalize import fold

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_LATIN_OR_NUMBER = re.compile(r"[a-z0-9][a-z0-9.%]*", re.IGNORECASE)
# Question words carry no evidence: an answer sentence rarely repeats them.
_QUESTION_WORDS = re.compile(r"什么|多少|哪些|哪个|哪里|哪儿|怎么|怎样|如何|为什么|是否|吗|呢")

# Weights of the three parts of a sentence's score (coverage counts 1). Chosen on the
# tuning halves of CMRC dev and DRCD dev with scripts/tune_highlight.py.
CUE_WEIGHT = 0.15
BIGRAM_WEIGHT = 0.1
# An abbreviation match is weaker evidence than the word itself.
ABBREVIATION_CREDIT = 0.8
# Sentences are embedded to find the answering one only when nothing of the question
# appears in the passage (an English question, say), and only for the first few
# passages: it costs a model call.
SEMANTIC_PASSAGES = 5

Span = tuple[int, int]


class WordSource(Protocol):
    """What the highlighter needs of qa.tokenizer.Tokenizer."""

    def tokens(self, text: str, already_folded: bool = False) -> list[str]: ...

    def tagged_words(self, folded: str) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class _Question:
    folded: str
    idf: dict[str, float]
    bigrams: frozenset[str]
    kind: str | None


def answer_spans(
    question: str,
    idf: dict[str, float],
    tokenizer: WordSource,
    texts: Sequence[str],
    similarity: Callable[[list[str]], Sequence[float]] | None = None,
) -> list[Span]:
    """The answering sentence's span in each text.

    `idf` weighs the question's keyword tokens; `similarity`, if given, scores
    sentences against the question (their cosine) for the first SEMANTIC_PASSAGES
    texts that share nothing with the question.
    """
    asked = _Question(fold(question), idf, frozenset(question_terms(question)),
                      question_kind(question))
    spans_per_text = [passage_sentences(text) for text in texts]
    results: list[Span] = []
    needs_model: list[int] = []
    for position, (text, spans) in enumerate(zip(texts, spans_per_text, strict=True)):
        scores = [_sentence_score(asked, tokenizer, text[s:e]) for s, e in spans]
        results.append(best_span(spans, scores))
        if (max(scores) <= 0 and len(spans) > 1 and similarity is not None
                and position < SEMANTIC_PASSAGES):
            needs_model.append(position)
    if needs_model and similarity is not None:
        sentences = [texts[p][s:e] for p in needs_model for s, e in spans_per_text[p]]
        scores = list(similarity(sentences))
        cursor = 0
        for position in needs_model:
            count = len(spans_per_text[position])
            results[position] = best_span(spans_per_text[position],
                                          scores[cursor : cursor + count])
            cursor += count
    return results


def _sentence_score(asked: _Question, tokenizer: WordSource, sentence: str) -> float:
    folded = fold(sentence)
    coverage = keyword_coverage(asked.folded, asked.idf, folded,
                                tokenizer.tokens(folded, already_folded=True))
    overlap = bigram_share(asked.bigrams, folded)
    cue = 0.0
    if asked.kind is not None and (coverage > 0 or overlap > 0):
        words = tokenizer.tagged_words(folded)
        cue = float(sentence_has_cue(asked.kind, folded, words, asked.folded))
    return coverage + CUE_WEIGHT * cue + BIGRAM_WEIGHT * overlap


def keyword_coverage(
    question: str, idf: dict[str, float], sentence: str, sentence_tokens: list[str]
) -> float:
    """Share of the question's idf weight found in the sentence (both folded).

    A word found only as an abbreviation or expansion counts ABBREVIATION_CREDIT.
    """
    total = sum(idf.values())
    if total <= 0:
        return 0.0
    present = set(sentence_tokens)
    found = 0.0
    missing = []
    for term, weight in idf.items():
        if term in present or (len(term) > 1 and term in sentence):
            found += weight
        else:
            missing.append(term)
    if missing:
        credited = _abbreviated_terms(question, missing, sentence, present)
        found += ABBREVIATION_CREDIT * sum(idf[t] for t in credited)
    return found / total


def _abbreviated_terms(
    question: str, missing: list[str], sentence: str, sentence_words: set[str]
) -> set[str]:
    """The missing question terms the sentence holds in short or long form."""
    credited = {t for t in missing if _CJK.fullmatch(t) and len(t) > 1
                and abbreviation_window(t, sentence) is not None}
    # The other way round: a sentence word that abbreviates a stretch of the
    # question (the question says 综合试验区, the sentence 综试区) credits the
    # question's words inside that stretch.
    for word in sentence_words:
        if len(word) < 2 or not _CJK.fullmatch(word) or word in question:
            continue
        window = abbreviation_window(word, question)
        if window is not None:
            stretch = question[window[0] : window[1]]
            credited.update(t for t in missing if t in stretch)
    return credited


def abbreviation_window(short: str, text: str) -> Span | None:
    """Where `text` spells out `short` (综试区 -> 综合试验区): its characters in order,
    starting with the first, within one run of Chinese no longer than a limit
    (len + 2 for two characters, 2 * len + 1 for more). None if nowhere.

    Literal occurrences do not count: the caller has already looked for those.
    """
    if len(short) < 2:
        return None
    limit = len(short) + 2 if len(short) == 2 else 2 * len(short) + 1
    for run in _CJK.finditer(text):
        chars = run.group()
        start = chars.find(short[0])
        while start != -1:
            end = _subsequence_end(short, chars, start, start + limit)
            if end is not None and end - start > len(short):
                return run.start() + start, run.start() + end
            start = chars.find(short[0], start + 1)
    return None


def _subsequence_end(short: str, chars: str, start: int, stop: int) -> int | None:
    position = start
    for char in short:
        position = chars.find(char, position, stop)
        if position == -1:
            return None
        position += 1
    return position


def question_terms(question: str) -> set[str]:
    """Character bigrams of the question's Chinese runs plus its Latin words and numbers."""
    text = _QUESTION_WORDS.sub(" ", fold(question))
    terms: set[str] = set()
    for run in _CJK.findall(text):
        if len(run) == 1:
            terms.add(run)
        terms.update(run[i : i + 2] for i in range(len(run) - 1))
    terms.update(_LATIN_OR_NUMBER.findall(text))
    return terms


def bigram_share(terms: frozenset[str] | set[str], folded_sentence: str) -> float:
    """Share of the question's terms (by length) in an already folded sentence."""
    total = sum(len(term) for term in terms)
    if not total:
        return 0.0
    return sum(len(term) for term in terms if term in folded_sentence) / total


def passage_sentences(text: str) -> list[Span]:
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


def best_span(spans: list[Span], scores: Sequence[Any]) -> Span:
    """The span with the highest score; the earliest wins a tie."""
    best = max(range(len(spans)), key=lambda i: (scores[i], -i))
    return spans[best]
