"""Wire copies: passages whose text is the same up to small edits.

Chinese news is republished verbatim (a 新华社 story in dozens of papers), so a
ranked list can hold the same text many times over. Two texts are near-duplicates
when the Jaccard similarity of their sets of character shingles (SHINGLE_SIZE
characters in a row, after folding and dropping punctuation and spaces) reaches a
threshold: one changed character touches at most SHINGLE_SIZE shingles, so a few
edits in a passage of 150 characters keep it above 0.8, while two different
reports of the same event share far fewer shingles.

Folding here is NFKC and lower case only, not qa.normalize.fold: its
traditional -> simplified step costs about 0.2 ms a passage (most of the time
of grouping 50 passages), and a copy moved between scripts is no small edit.

Pure functions over texts; the retriever decides what to do with the groups.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

SHINGLE_SIZE = 4
# Letters, digits and CJK only: punctuation and spacing differ between outlets.
_NOT_TEXT = re.compile(r"[^\w]|_", re.UNICODE)


# A server groups the same top passages for question after question; a passage's set
# is ~10-20 kB, so only the most recent few hundred are kept.
@lru_cache(maxsize=512)
def shingles(text: str, size: int = SHINGLE_SIZE) -> frozenset[str]:
    """The set of `size`-character runs of the folded text without punctuation or spaces."""
    compact = _NOT_TEXT.sub("", unicodedata.normalize("NFKC", text).lower())
    if len(compact) <= size:
        return frozenset([compact]) if compact else frozenset()
    return frozenset(compact[i : i + size] for i in range(len(compact) - size + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / |a ∪ b|; 1.0 for two empty sets."""
    if not a and not b:
        return 1.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)


def group_duplicates(
    texts: Sequence[str], threshold: float, limit: int | None = None
) -> list[list[int]]:
    """Indexes of `texts` grouped by near-identical text, in order of first appearance.

    Each group starts with its first (best-ranked) member, which a later text is
    compared against; a text joins the first group it is similar enough to
    (Jaccard of shingles >= threshold), or starts a new one. Once there are `limit`
    groups, a text that joins none is left out, which saves comparing it later.
    """
    groups: list[list[int]] = []
    heads: list[frozenset[str]] = []
    for position, text in enumerate(texts):
        own = shingles(text)
        for group, head in zip(groups, heads, strict=True):
            # Jaccard cannot exceed the ratio of the sizes: skip the set operation.
            smaller, larger = sorted((len(own), len(head)))
            if larger and smaller / larger < threshold:
                continue
            if jaccard(own, head) >= threshold:
                group.append(position)
                break
        else:
            if limit is None or len(groups) < limit:
                groups.append([position])
                heads.append(own)
    return groups
