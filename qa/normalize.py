"""Text folded for matching: NFKC, traditional -> simplified, lower case.

Only the keyword side and sentence matching see folded text; passages and
citations always show the original.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

import opencc
from opencc import OpenCC


@lru_cache(maxsize=1)
def _to_simplified() -> OpenCC:
    return OpenCC("t2s")


@lru_cache(maxsize=1)
def _changes_under_t2s() -> frozenset[str]:
    """Every character whose presence can make OpenCC's t2s change a text: those its
    character table maps to another character, and those a phrase entry changes even
    though the table keeps them (覆 in 反覆 -> 反复). A text without any is its own
    simplified form, so the (pure Python, about 0.3 ms per 100 characters) conversion
    can be skipped."""
    folder = Path(opencc.__file__).parent / "dictionary"
    changed: set[str] = set()
    for name in ("TSCharacters.txt", "TSPhrases.txt"):
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            key, _, values = line.partition("\t")
            value = values.split(" ")[0]
            if value == key:
                continue
            if len(value) == len(key):
                changed.update(k for k, v in zip(key, value, strict=True) if k != v)
            else:
                changed.update(key)
    return frozenset(changed)


def fold(text: str) -> str:
    """Full-width to half-width (NFKC), traditional to simplified, Latin to lower case."""
    if len(text) > CACHED_MAX_CHARS:
        return _fold(text)
    return _cached_fold(text)


# A server folds the same passages' sentences for question after question; a bounded
# number of short texts are kept (indexing folds whole documents too).
CACHED_MAX_CHARS = 1000


def _fold(text: str) -> str:
    normal = (text if unicodedata.is_normalized("NFKC", text)
              else unicodedata.normalize("NFKC", text))
    if _changes_under_t2s().isdisjoint(normal):
        return normal.lower()
    return _to_simplified().convert(normal).lower()


_cached_fold = lru_cache(maxsize=8192)(_fold)
