"""Bounding what a long question costs: only its rarest words are searched as keywords.

A 1,000-character question is some 500 words; an FTS5 query OR-ing all of them, and
the idf sums over them for every highlighted sentence, cost a second or more of CPU.
The rarest words (highest idf) carry nearly all of the keyword evidence anyway.
"""

from __future__ import annotations


def keep_rarest(tokens: list[str], idf: dict[str, float], limit: int
                ) -> tuple[list[str], dict[str, float]]:
    """`tokens` and `idf` restricted to the `limit` distinct tokens of highest idf
    (ties: first in the question first); unchanged if there are no more than that."""
    unique = list(dict.fromkeys(tokens))
    if len(unique) <= limit:
        return tokens, idf
    order = sorted(range(len(unique)), key=lambda i: (-idf.get(unique[i], 0.0), i))
    kept = {unique[i] for i in order[:limit]}
    return [t for t in tokens if t in kept], {t: w for t, w in idf.items() if t in kept}
