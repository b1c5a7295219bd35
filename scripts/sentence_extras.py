"""Features tried for qa.sentence_choice and not kept (issue 9, fourth step).

`scripts/fit_sentence_choice.py --extra NAME` appends them to every sentence's
features so that their effect can be measured again; the product computes none of
them. All work on folded text (qa.normalize.fold):

- run: the longest stretch of the question's wording (question phrases cut out) the
  sentence holds word for word, as a share of that wording's length;
- window: the largest share of the question's keyword weight (idf) named literally
  within WINDOW characters of the sentence;
- order: the share of consecutive pairs of the named question words (in the
  question's order) that the sentence names in that order;
- slot gap: both slot neighbours (qa.answer_slot) in the sentence, the first ahead,
  with 1 to GAP characters between them, where the answer would stand;
- novelty: the share of the sentence's Chinese characters the question lacks;
- name near: for 谁 and 哪里, a person/organisation or place (jieba.posseg tags of
  every sentence) that the question lacks, within CUE_DISTANCE characters of a
  question word the sentence names;
- distinctive bigrams: the share of the question's character bigrams the sentence
  holds, each weighing the share of the document's candidate sentences without it
  (as qa.sentence_choice's distinctive characters, over bigrams);
- distinctive slot: the slot share with each neighbour weighed the same way;
- reason cue: for a question asking why (为什么, 为何, 原因), the sentence gives a
  cause or purpose (因为, 由于, 因此, 导致, 为了, 因);
- cue if time / number / who / place: the answer cue, only for that kind of
  question (question kind x feature interactions in the same softmax model).
"""

from __future__ import annotations

import re

import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa import highlight
from qa.answer_cues import NUMBER, PLACE, TIME, WHO, question_kind
from qa.answer_slot import slot_neighbours
from qa.normalize import fold

WINDOW = 16
GAP = 15
EXTRAS = ("run", "window", "order", "slot gap", "novelty", "cue if time", "cue if number",
          "cue if who", "cue if place", "name near", "distinctive bigrams",
          "distinctive slot", "reason cue")
# A question asking why, and a sentence giving a cause or a purpose.
_REASON_QUESTION = re.compile(r"为什么|为何|原因|why\b")
_REASON = re.compile(r"因为|由于|因此|所以|导致|原因|为了|以致|以便|因而|因")
# jieba part-of-speech tags of a person or organisation (谁) and of a place (哪里).
_TAGS = {WHO: frozenset({"nr", "nrt", "nrfg", "nt"}), PLACE: frozenset({"ns", "nsf"})}


def extra_features(names: list[str], question: str, idf: dict[str, float], tokenizer,
                   sentences: list[str], cues: list[float]) -> list[list[float]]:
    """The named extras of each sentence (`cues`: each sentence's answer-cue feature)."""
    folded_question = fold(question)
    asked_idf = highlight._without_question_words(folded_question, idf)
    cut = highlight._QUESTION_PHRASE.sub("\n", folded_question)
    pieces = [p for p in re.split(r"[^\u3400-\u9fff\uf900-\ufaffa-z0-9]+", cut) if p]
    neighbours = slot_neighbours(folded_question)
    kind = question_kind(question)
    folded_sentences = [fold(sentence) for sentence in sentences]
    bigrams = sorted(highlight.question_terms(question))
    rarity = {term: 1 - sum(term in f for f in folded_sentences) / len(folded_sentences)
              for term in (*bigrams, *neighbours)}
    rows = []
    for sentence, cue in zip(sentences, cues, strict=True):
        folded = fold(sentence)
        found = highlight.matched_terms(folded_question, asked_idf, folded,
                                        tokenizer.tokens(folded, already_folded=True))
        values = {
            "run": longest_run(pieces, folded),
            "window": window_share(asked_idf, found, folded),
            "order": order_share(folded_question, found, folded),
            "slot gap": slot_gap(neighbours, folded),
            "novelty": novelty(folded_question, folded),
            "cue if time": cue if kind == TIME else 0.0,
            "cue if number": cue if kind == NUMBER else 0.0,
            "cue if who": cue if kind == WHO else 0.0,
            "cue if place": cue if kind == PLACE else 0.0,
        }
        values["distinctive bigrams"] = _weighted_share(bigrams, rarity, folded)
        values["distinctive slot"] = _weighted_share(list(neighbours), rarity, folded)
        values["reason cue"] = float(bool(_REASON_QUESTION.search(folded_question)
                                          and _REASON.search(folded)))
        if "name near" in names:
            values["name near"] = name_near(kind, folded_question, found, folded, tokenizer)
        rows.append([values[name] for name in names])
    return rows


def longest_run(pieces: list[str], sentence: str) -> float:
    length = sum(len(p) for p in pieces)
    if not length:
        return 0.0
    best = 0
    for piece in pieces:
        for start in range(len(piece) - best):
            end = start + best + 1
            while end <= len(piece) and piece[start:end] in sentence:
                end += 1
            best = max(best, end - 1 - start)
    return best / length


def window_share(idf: dict[str, float], found: dict[str, float], sentence: str) -> float:
    total = sum(idf.values())
    places = sorted((m.start(), m.end(), term) for term in found if term in idf
                    for m in re.finditer(re.escape(term), sentence))
    if total <= 0 or not places:
        return 0.0
    best = 0.0
    for i, (start, _, _) in enumerate(places):
        seen: dict[str, float] = {}
        for _, other_end, term in places[i:]:
            if other_end - start > WINDOW:
                break
            seen[term] = idf[term] * found[term]
        best = max(best, sum(seen.values()))
    return best / total


def order_share(question: str, found: dict[str, float], sentence: str) -> float:
    placed = sorted((question.find(t), sentence.find(t)) for t in found
                    if t in question and t in sentence)
    if len(placed) < 2:
        return 0.0
    pairs = list(zip(placed, placed[1:], strict=False))
    return sum(b[1] > a[1] for a, b in pairs) / len(pairs)


def slot_gap(neighbours: tuple[str, ...], sentence: str) -> float:
    if len(neighbours) != 2:
        return 0.0
    left, right = neighbours
    start = sentence.find(left)
    while start != -1:
        end = sentence.find(right, start + len(left))
        if end != -1 and 0 < end - start - len(left) <= GAP:
            return 1.0
        start = sentence.find(left, start + 1)
    return 0.0


def novelty(question: str, sentence: str) -> float:
    characters = [c for c in sentence if "\u3400" <= c <= "\u9fff"]
    if not characters:
        return 0.0
    return sum(c not in question for c in characters) / len(characters)


CUE_DISTANCE = 12


def name_near(kind, question: str, found: dict[str, float], sentence: str, tokenizer) -> float:
    tags = _TAGS.get(kind)
    if tags is None or not found:
        return 0.0
    names = [word for word, flag in tokenizer.tagged_words(sentence)
             if flag in tags and len(word) > 1 and word not in question]
    places = [m.start() for term in found for m in re.finditer(re.escape(term), sentence)]
    for name in names:
        for m in re.finditer(re.escape(name), sentence):
            if any(abs(m.start() - p) <= CUE_DISTANCE or abs(m.end() - p) <= CUE_DISTANCE
                   for p in places):
                return 1.0
    return 0.0


def _weighted_share(terms: list[str], weights: dict[str, float], sentence: str) -> float:
    total = sum(weights[t] for t in terms)
    if total <= 0:
        return 0.0
    return sum(weights[t] for t in terms if t in sentence) / total
