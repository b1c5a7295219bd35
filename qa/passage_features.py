"""Cheap evidence of how well a passage's wording fits a question, beyond BM25 and cosine.

All features are shares (0-1) of the question's keyword weight (idf) or of its exact
strings, found by substring search of the question's own tokens in the passage's
folded text: no tokenising of the passage, so they cost microseconds per passage and
can be computed for the few best candidates of every question.

- `window`: the largest share of the question's idf weight whose words all occur
  inside one stretch of `window` characters (the matched words near each other, as
  in the sentence that answers, not spread over the paragraph);
- `in_order`: the share held by the longest run of the question's words that occur
  in the passage in the question's order (each at its first occurrence);
- `exact`: the share of the question's numbers, Latin words and quoted strings
  (“…”, 《…》, 「…」) that the passage holds verbatim;
- `title`: the share of the question's idf weight found in the title.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.normalize import fold, fold_quickly

# Numbers (2023, 18.8), Latin words (5g, ai) and quoted strings of a question.
_EXACT = re.compile(r"\d+(?:\.\d+)?[a-z]*|[a-z][a-z0-9]*|“([^”]{1,30})”|《([^》]{1,30})》"
                    r"|「([^」]{1,30})」|\"([^\"]{1,30})\"")
FEATURE_NAMES = ("window", "in_order", "exact", "title")


@dataclass(frozen=True)
class QuestionTerms:
    """What the features look for: the question's weighted words and exact strings."""

    # Distinct tokens in the order of their first place in the question, with idf.
    words: tuple[tuple[str, float], ...]
    exact: tuple[str, ...]

    @property
    def total(self) -> float:
        return sum(weight for _, weight in self.words)


def question_terms(question: str, idf: dict[str, float]) -> QuestionTerms:
    """The question's tokens (those with an idf) in question order, and its exact strings."""
    folded = fold(question)
    ordered = sorted((t for t, w in idf.items() if w > 0),
                     key=lambda t: (folded.find(t) if t in folded else len(folded), t))
    exact = []
    for match in _EXACT.finditer(folded):
        quoted = next((g for g in match.groups() if g), None)
        exact.append(quoted or match.group())
    return QuestionTerms(tuple((t, idf[t]) for t in ordered), tuple(dict.fromkeys(exact)))


def in_order_share(terms: QuestionTerms, text: str) -> float:
    """The `in_order` feature alone: the share of the question's idf weight held by the
    longest run of its words that occur in `text` in the question's order."""
    total = terms.total
    return _in_order(terms, fold_quickly(text)) / total if total > 0 else 0.0


def title_share(terms: QuestionTerms, title: str | None) -> float:
    """The `title` feature alone: the share of the question's idf weight in `title`."""
    total = terms.total
    if not title or total <= 0:
        return 0.0
    folded = fold_quickly(title)
    return sum(w for t, w in terms.words if t in folded) / total


def wording_bonuses(question: str, idf: dict[str, float], texts: dict[int, str],
                    titles: dict[int, str | None] | None = None,
                    weights: tuple[float, float] = (1.0, 0.0)) -> dict[int, float]:
    """Each of `texts` (chunk id -> the text the retriever has): its `in_order_share`
    and its title's `title_share` (`titles`, same ids), averaged with `weights`
    (in order, title); the default is the in-order share alone."""
    terms = question_terms(question, idf)
    in_order, title = weights
    total = in_order + title
    if total <= 0:
        return dict.fromkeys(texts, 0.0)
    titles = titles or {}
    return {chunk_id: (in_order * in_order_share(terms, text)
                       + (title * title_share(terms, titles.get(chunk_id)) if title else 0.0))
            / total for chunk_id, text in texts.items()}


def passage_features(terms: QuestionTerms, text: str, title: str | None = None,
                     window: int = 40) -> tuple[float, ...]:
    """(window, in_order, exact, title) of one passage (see the module docstring)."""
    folded = fold_quickly(text)
    total = terms.total
    if total <= 0:
        return (0.0, 0.0, _exact_share(terms, folded), 0.0)
    occurrences = _occurrences(terms, folded)
    return (_best_window(terms, occurrences, window) / total,
            _in_order(terms, folded) / total,
            _exact_share(terms, folded), title_share(terms, title))


def _occurrences(terms: QuestionTerms, folded: str) -> list[tuple[int, int, int]]:
    """(start, end, word index) of every occurrence of every question word, by start."""
    found = []
    for n, (token, _) in enumerate(terms.words):
        start = folded.find(token)
        while start >= 0:
            found.append((start, start + len(token), n))
            start = folded.find(token, start + 1)
    found.sort()
    return found


def _best_window(terms: QuestionTerms, occurrences: list[tuple[int, int, int]],
                 width: int) -> float:
    """The most idf weight of distinct words that fit within `width` characters."""
    best = 0.0
    for i, (start, _, _) in enumerate(occurrences):
        seen: set[int] = set()
        for other_start, other_end, word in occurrences[i:]:
            if other_start - start >= width:
                break
            if other_end - start <= width:
                seen.add(word)
        best = max(best, sum(terms.words[w][1] for w in seen))
    return best


def _in_order(terms: QuestionTerms, folded: str) -> float:
    """Weight of the heaviest chain of question words whose first occurrences in the
    passage never go back in the question's order (a weighted longest non-decreasing
    subsequence; search-mode words nested in one another start at the same place)."""
    firsts = [(folded.find(t), w) for t, w in terms.words if t in folded]
    best: list[float] = []
    for i, (position, weight) in enumerate(firsts):
        before = [best[j] for j in range(i) if firsts[j][0] <= position]
        best.append(weight + max(before, default=0.0))
    return max(best, default=0.0)


def _exact_share(terms: QuestionTerms, folded: str) -> float:
    if not terms.exact:
        return 0.0
    return sum(1 for s in terms.exact if s in folded) / len(terms.exact)
