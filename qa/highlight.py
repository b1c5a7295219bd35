"""Which sentence of a passage answers the question best.

Each sentence of a passage is scored by

- coverage: the share of the question's keyword weight (idf) it holds. A question
  word counts when the sentence has it, or has it as an abbreviation or expansion:
  综试区 in 综合试验区, 跨境电商 in 跨境电子商务 (the shorter word's characters in
  order within a short stretch of one run of Chinese, on either side); a word
  named by an earlier sentence of the passage counts in part (CARRY), since the
  answering sentence often leaves out the subject it is about;
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

from qa.answer_cues import PLACE, WHO, question_kind, sentence_has_cue
from qa.ingest.sentences import sentence_spans, split_long_sentence
from qa.normalize import fold

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_LATIN_OR_NUMBER = re.compile(r"[a-z0-9][a-z0-9.%]*", re.IGNORECASE)
# Question words carry no evidence: an answer sentence rarely repeats them.
_QUESTION_WORDS = re.compile(r"什么|多少|哪些|哪个|哪里|哪儿|怎么|怎样|如何|为什么|是否|吗|呢")
# The same, with the measure word or noun that often follows (哪一年, 几个, 什么时候).
_QUESTION_PHRASE = re.compile(
    r"哪一?[个些年天月日位种本家所条部里儿座次国样]?|什么(?:时候|时间|地方|人|样)?|多少[个年次]?"
    r"|几[个月年日号次岁]?|谁|何(?:时|处|地|人|年|日)|怎么样?|怎样|如何|为什么|为何"
)

# Weights of the parts of a sentence's score (coverage counts 1). Chosen on the tuning
# halves (even-numbered articles) of CMRC dev and DRCD dev with
# scripts/tune_highlight.py; the odd-numbered articles were held out.
CUE_WEIGHT = 0.15
BIGRAM_WEIGHT = 0.1
# An abbreviation match is weaker evidence than the word itself.
ABBREVIATION_CREDIT = 0.8
# Share of a question word's credit that a sentence inherits from an earlier
# sentence of its passage naming it.
CARRY = 0.4
# The same from a passage's first sentence, which usually names its subject.
LEAD_CARRY = 0.7
# The same from the part of the document before a passage (its earlier chunks).
CONTEXT_CARRY = 0.7
# A piece ending in a semicolon is a clause of the sentence it is in, not a sentence.
SEMICOLON_JOINS = 1
# A piece cut after a Latin initial (S.G. Tallentyre) or at a mark inside round
# brackets (牛车水（；）) is joined to the next one.
JOIN_ABBREVIATIONS = 1
# Sentences longer than this many characters are cut at commas (0: never). Measured
# and left off: a shorter mark loses more answers than it makes precise.
LONG_SENTENCE = 0
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
    contexts: Sequence[str] | None = None,
) -> list[Span]:
    """The answering sentence's span in each text.

    `idf` weighs the question's keyword tokens; `similarity`, if given, scores
    sentences against the question (their cosine) for the first SEMANTIC_PASSAGES
    texts that share nothing with the question; `contexts`, if given, holds for each
    text what comes before it in its document (see scored_answer_spans).
    """
    return [span for span, _ in scored_answer_spans(question, idf, tokenizer, texts,
                                                     similarity, contexts)]


def scored_answer_spans(
    question: str,
    idf: dict[str, float],
    tokenizer: WordSource,
    texts: Sequence[str],
    similarity: Callable[[list[str]], Sequence[float]] | None = None,
    contexts: Sequence[str] | None = None,
) -> list[tuple[Span, float]]:
    """The answering sentence's span in each text, with its score (coverage, cue and
    bigrams; 0 where the passage shares nothing with the question).

    A text's context (``contexts[i]``, "" for none) is the part of its document before
    it, e.g. the chunk that names the subject: the question words it names count in
    part (CONTEXT_CARRY) in every sentence of the text, as an earlier sentence's would.
    """
    folded = fold(question)
    asked = _Question(folded, _without_question_words(folded, idf),
                      frozenset(question_terms(question)), question_kind(question))
    spans_per_text = [passage_sentences(text) for text in texts]
    results: list[tuple[Span, float]] = []
    needs_model: list[int] = []
    for position, (text, spans) in enumerate(zip(texts, spans_per_text, strict=True)):
        context = contexts[position] if contexts is not None else ""
        inherited = _context_credit(asked, tokenizer, context) if context else {}
        scores = _sentence_scores(asked, tokenizer, [text[s:e] for s, e in spans], inherited)
        span = best_span(spans, scores)
        results.append((span, max(scores)))
        if (max(scores) <= 0 and len(spans) > 1 and similarity is not None
                and position < SEMANTIC_PASSAGES):
            needs_model.append(position)
    if needs_model and similarity is not None:
        sentences = [texts[p][s:e] for p in needs_model for s, e in spans_per_text[p]]
        scores = list(similarity(sentences))
        cursor = 0
        for position in needs_model:
            count = len(spans_per_text[position])
            results[position] = (best_span(spans_per_text[position],
                                           scores[cursor : cursor + count]), 0.0)
            cursor += count
    return results


def _context_credit(asked: _Question, tokenizer: WordSource, context: str) -> dict[str, float]:
    """The question words an earlier part of the document names, each with the share
    of its credit that carries into the text after it."""
    folded = fold(context)
    found = matched_terms(asked.folded, asked.idf, folded,
                          tokenizer.tokens(folded, already_folded=True))
    return {term: CONTEXT_CARRY * value for term, value in found.items()}


def _without_question_words(question: str, idf: dict[str, float]) -> dict[str, float]:
    """The idf weights less the tokens that are part of a question phrase (哪一年 gives
    哪一年 and 一年, rare words in any index): an answer does not repeat them."""
    phrases = [m.group() for m in _QUESTION_PHRASE.finditer(question)]
    return {t: w for t, w in idf.items() if not any(t in phrase for phrase in phrases)}


def _sentence_scores(asked: _Question, tokenizer: WordSource, sentences: list[str],
                     inherited: dict[str, float] | None = None) -> list[float]:
    total = sum(asked.idf.values())
    carried: dict[str, float] = dict(inherited or {})
    scores = []
    folded_sentences = [fold(sentence) for sentence in sentences]
    for position, folded in enumerate(folded_sentences):
        found = matched_terms(asked.folded, asked.idf, folded,
                              tokenizer.tokens(folded, already_folded=True))
        # What earlier sentences named carries on at a discount: the answering
        # sentence often leaves out the subject its passage introduced (张裔，字君嗣。
        # 东汉末时……的官员。).
        credit = {t: max(found.get(t, 0.0), carried.get(t, 0.0))
                  for t in set(found) | set(carried)}
        share = LEAD_CARRY if position == 0 else CARRY
        for term, value in found.items():
            carried[term] = max(carried.get(term, 0.0), share * value)
        coverage = sum(asked.idf[t] * c for t, c in credit.items()) / total if total > 0 else 0.0
        scores.append(coverage + BIGRAM_WEIGHT * bigram_share(asked.bigrams, folded))
    if asked.kind is None or max(scores) <= 0:
        return scores
    # The cue is looked for only where it could change the choice: tagging names
    # and places costs more than all the rest.
    contenders = max(scores) - CUE_WEIGHT
    for position, folded in enumerate(folded_sentences):
        if scores[position] > 0 and scores[position] >= contenders:
            words = tokenizer.tagged_words(folded) if asked.kind in (WHO, PLACE) else ()
            if sentence_has_cue(asked.kind, folded, words, asked.folded):
                scores[position] += CUE_WEIGHT
    return scores


def matched_terms(
    question: str, idf: dict[str, float], sentence: str, sentence_tokens: list[str]
) -> dict[str, float]:
    """The question's terms found in the sentence (both folded), each with its credit:
    1 for the word itself, ABBREVIATION_CREDIT for an abbreviation or expansion."""
    present = set(sentence_tokens)
    found: dict[str, float] = {}
    missing = []
    for term in idf:
        if term in present or (len(term) > 1 and term in sentence):
            found[term] = 1.0
        else:
            missing.append(term)
    if missing and ABBREVIATION_CREDIT > 0:
        for term in _abbreviated_terms(question, missing, sentence, present):
            found[term] = ABBREVIATION_CREDIT
    return found


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
    # Most pairs fail here, before any run of the text is scanned: a word whose every
    # character the text does not hold cannot be spelt out in it.
    if len(short) < 2 or any(char not in text for char in short):
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
    """Sentence spans of a passage, ignoring the line breaks between merged paragraphs.

    A piece cut inside brackets or quotes (氨碱法（Solvay process；…）), or one that
    starts with a comma, is joined to the sentence before it.
    """
    spans: list[Span] = []
    offset = 0
    for line in text.split("\n"):
        line_start = len(spans)
        for start, end in sentence_spans(line):
            # Leading/trailing spaces are not part of the sentence a reader sees.
            piece = line[start:end]
            left = len(piece) - len(piece.lstrip())
            right = len(piece.rstrip())
            if right <= left:
                continue
            span = (offset + start + left, offset + start + right)
            if len(spans) > line_start and (
                _unclosed(text[spans[-1][0] : spans[-1][1]])
                or text[span[0]] in _CONTINUATION
                or (SEMICOLON_JOINS and text[spans[-1][1] - 1] in "；;")
                or (JOIN_ABBREVIATIONS and _false_end(text[spans[-1][0] : spans[-1][1]]))
            ):
                spans[-1] = (spans[-1][0], span[1])
            else:
                spans.append(span)
        offset += len(line) + 1
    if LONG_SENTENCE:
        spans = [piece for start, end in spans
                 for piece in split_long_sentence(text, start, end, LONG_SENTENCE)]
    return spans or [(0, len(text))]


_OPENERS = "（(《「『“【〔["
_CLOSERS = "）)》」』”】〕]"
_CONTINUATION = frozenset("，,、：:）)》」』”】〕]")


# A Latin full stop after an initial or a title (S.G. Tallentyre, St. John) ends no
# sentence.
_ABBREVIATION_END = re.compile(r"(?:^|[^A-Za-z])(?:[A-Z]|St|Mr|Mrs|Ms|Dr|Jr|Sr|No|vs)\.$")


def _false_end(piece: str) -> bool:
    """Whether a piece of a sentence was cut where no sentence ends: after a Latin
    initial or title, or at a mark inside round brackets (牛车水（；）是……)."""
    if _ABBREVIATION_END.search(piece):
        return True
    inner = piece.rstrip("）)")
    return len(inner) < len(piece) and _unclosed(inner)


def _unclosed(sentence: str) -> bool:
    """Whether a bracket or quote opened in the sentence is still open at its end."""
    depth = 0
    for char in sentence:
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS and depth:
            depth -= 1
    return depth > 0


def best_span(spans: list[Span], scores: Sequence[Any]) -> Span:
    """The span with the highest score; the earliest wins a tie."""
    best = max(range(len(spans)), key=lambda i: (scores[i], -i))
    return spans[best]
