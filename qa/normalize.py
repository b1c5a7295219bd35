"""Text folded for matching: NFKC, traditional -> simplified, lower case.

Only the keyword side and sentence matching see folded text; passages and
citations always show the original.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from opencc import OpenCC


@lru_cache(maxsize=1)
def _to_simplified() -> OpenCC:
    return OpenCC("t2s")


def fold(text: str) -> str:
    """Full-width to half-width (NFKC), traditional to simplified, Latin to lower case."""
    if len(text) > CACHED_MAX_CHARS:
        return _fold(text)
    return _cached_fold(text)


# A server folds the same passages' sentences for question after question; a bounded
# number of short texts are kept (indexing folds whole documents too).
CACHED_MAX_CHARS = 1000


def _fold(text: str) -> str:
    return _to_simplified().convert(unicodedata.normalize("NFKC", text)).lower()


_cached_fold = lru_cache(maxsize=8192)(_fold)
