"""Text folded for matching: NFKC, traditional -> simplified, lower case.

Only the keyword side and sentence matching see folded text; passages and
citations always show the original.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import opencc
from opencc import OpenCC


@lru_cache(maxsize=1)
def _to_simplified() -> OpenCC:
    return OpenCC("t2s")


@lru_cache(maxsize=2)
def _t2s_changes(name: str) -> dict[str, str]:
    """The entries of an OpenCC t2s dictionary file that change their key: key -> its
    first simplified form."""
    path = Path(opencc.__file__).parent / "dictionary" / name
    changes = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, values = line.partition("\t")
        value = values.split(" ")[0]
        if key and value != key:
            changes[key] = value
    return changes


@lru_cache(maxsize=1)
def _changes_under_t2s() -> tuple[frozenset[str], re.Pattern[str]]:
    """What can make OpenCC's t2s change a text: a character its table maps to another
    one, or a phrase of its phrase table that changes without holding such a character
    (反覆 -> 反复, though 覆 alone stays 覆). A text with neither is its own simplified
    form, so the conversion (pure Python, about 0.3 ms per 100 characters) is skipped."""
    characters = frozenset(_t2s_changes("TSCharacters.txt"))
    phrases = sorted((k for k in _t2s_changes("TSPhrases.txt") if characters.isdisjoint(k)),
                     key=lambda k: (-len(k), k))
    return characters, re.compile("|".join(map(re.escape, phrases)) or "(?!)")


@lru_cache(maxsize=1)
def _character_table() -> dict[int, str]:
    """OpenCC's t2s character table alone: each character to its first simplified form."""
    return {ord(key): value for key, value in _t2s_changes("TSCharacters.txt").items()
            if len(key) == 1 and value}


def _nfkc(text: str) -> str:
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


def fold_quickly(text: str) -> str:
    """`fold`, but traditional characters converted one by one rather than by phrases:
    the same result on simplified text, and on traditional text except where a phrase
    converts otherwise than its characters do (乾燥 -> 干燥, 反覆 -> 反复); microseconds
    instead of about 0.3 ms per 100 characters. For matching many passages per question."""
    normal = _nfkc(text)
    if _needs_t2s(normal):
        normal = normal.translate(_character_table())
    return normal.lower()


def _needs_t2s(text: str) -> bool:
    characters, phrases = _changes_under_t2s()
    return not characters.isdisjoint(text) or phrases.search(text) is not None


def fold(text: str) -> str:
    """Full-width to half-width (NFKC), traditional to simplified, Latin to lower case."""
    if len(text) > CACHED_MAX_CHARS:
        return _fold(text)
    return _cached_fold(text)


# A server folds the same passages' sentences for question after question; a bounded
# number of short texts are kept (indexing folds whole documents too).
CACHED_MAX_CHARS = 1000


def _fold(text: str) -> str:
    normal = _nfkc(text)
    if not _needs_t2s(normal):
        return normal.lower()
    return _to_simplified().convert(normal).lower()


_cached_fold = lru_cache(maxsize=8192)(_fold)
