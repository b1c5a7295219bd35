"""Sentence boundaries in Chinese (and Latin) text, as character spans."""

from __future__ import annotations

import math
import re

# A sentence ends at 。！？；… (or their half-width forms), followed by any
# closing quotes or brackets; a Latin full stop ends one only before a space,
# so that 1.76 and URLs are left alone.
_SENTENCE = re.compile(
    r".*?(?:[。！？!?；;]+|…+|\.(?=\s))[”’」』）)\"'】]*|.+?$",
    re.DOTALL,
)
_SOFT_BREAK = re.compile(r"[，,、：:]")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence; together they cover `text` exactly, in order."""
    spans = []
    for match in _SENTENCE.finditer(text):
        if match.end() > match.start():
            spans.append((match.start(), match.end()))
    return spans


def ends_sentence(text: str) -> bool:
    """Whether `text` ends at a sentence boundary (closing quotes allowed)."""
    stripped = text.rstrip().rstrip("”’」』）)\"'】")
    return bool(stripped) and stripped[-1] in "。！？!?；;…."


def split_long_sentence(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut one over-long sentence into balanced pieces of at most `max_chars`.

    Each cut goes at the comma nearest the balanced length, if one is near enough,
    so that no piece is a stub of a few characters.
    """
    pieces = []
    while end - start > max_chars:
        target = math.ceil((end - start) / math.ceil((end - start) / max_chars))
        window = text[start : start + max_chars]
        cuts = [m.end() for m in _SOFT_BREAK.finditer(window) if m.end() >= target // 2]
        cut = min(cuts, key=lambda c: abs(c - target)) if cuts else target
        pieces.append((start, start + cut))
        start += cut
    if end > start:
        pieces.append((start, end))
    return pieces
