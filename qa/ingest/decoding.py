"""Bytes of a text file -> str: UTF-8 (BOM optional) or GB18030, a few bad bytes tolerated.

A file with a handful of undecodable bytes (a truncated copy, one corrupted sector) is still
worth reading: those bytes become U+FFFD and a warning names their byte offsets. The share is
counted among the bytes outside ASCII: a file in another encoding fails on most of those (a
GBK file read as UTF-8, a Latin-1 one read as either), a damaged one on very few.
"""

from __future__ import annotations

import codecs
import logging
import threading
import unicodedata
from dataclasses import dataclass, field

from .load_errors import LoadError

logger = logging.getLogger(__name__)

# Up to this share of the non-ASCII bytes undecodable (at least one byte) is damage; more is
# another encoding.
MAX_BAD_BYTE_SHARE = 0.05
# Offsets named in the warning; the count is always given.
_OFFSETS_SHOWN = 10

# Decoded text with more than this share of control, private-use or unassigned characters is
# binary that happened to decode (GB18030 accepts many byte sequences).
_MAX_NON_TEXT_SHARE = 0.01
_TEXT_CONTROLS = frozenset("\t\n\r\f\v")
_NON_ASCII = bytes(range(128, 256))


def decode_text(data: bytes, name: str = "") -> str:
    """Decode a text file's bytes; `name` labels the warning about replaced bytes.

    Tried in order: UTF-8 after a BOM, strict UTF-8, UTF-8 with a few bad bytes replaced,
    strict GB18030, GB18030 with a few bad bytes replaced. Raises `LoadError` otherwise.
    """
    if b"\x00" in data:
        raise LoadError("binary file (contains NUL bytes)")
    if data.startswith(codecs.BOM_UTF8):
        text = _decode_tolerant(data[len(codecs.BOM_UTF8) :], "utf-8", name, len(codecs.BOM_UTF8))
        if text is None:
            raise LoadError("invalid UTF-8 after a UTF-8 BOM")
    else:
        # A UTF-8 file with one bad byte must not fall through to GB18030, which would read
        # the whole file as nonsense Chinese; a real GBK file fails UTF-8 on almost every
        # character, far above the tolerance.
        text = _decode_tolerant(data, "utf-8", name)
        if text is None:
            text = _decode_tolerant(data, "gb18030", name)
        if text is None:
            raise LoadError("not UTF-8 or GB18030 text")
    if not _looks_like_text(text):
        raise LoadError("binary content (control or unassigned characters)")
    return text


def _decode_tolerant(data: bytes, encoding: str, name: str, base: int = 0) -> str | None:
    """`data` decoded, bad bytes replaced when few enough (warned); None when too many."""
    non_ascii = len(data) - len(data.translate(None, _NON_ASCII))
    state = _Replaced(allowed=max(1, int(non_ascii * MAX_BAD_BYTE_SHARE)))
    _current.state = state
    try:
        text = data.decode(encoding, errors=_ERROR_HANDLER)
    except _TooManyBadBytes:
        return None
    finally:
        _current.state = None
    if state.offsets:
        ranges = _ranges([base + offset for offset in state.offsets])
        shown = ", ".join(ranges[:_OFFSETS_SHOWN]) + ("…" if len(ranges) > _OFFSETS_SHOWN else "")
        logger.warning(
            "%s: %d undecodable byte(s) replaced with U+FFFD (read as %s) at byte offset %s",
            name or "text",
            len(state.offsets),
            encoding.upper(),
            shown,
        )
    elif encoding != "utf-8":
        logger.debug("%s: decoded as %s", name, encoding.upper())
    return text


def _ranges(offsets: list[int]) -> list[str]:
    """[130, 131, 132, 264] -> ["130-132", "264"]."""
    ranges: list[list[int]] = []
    for offset in offsets:
        if ranges and offset == ranges[-1][1] + 1:
            ranges[-1][1] = offset
        else:
            ranges.append([offset, offset])
    return [str(first) if first == last else f"{first}-{last}" for first, last in ranges]


@dataclass
class _Replaced:
    allowed: int
    offsets: list[int] = field(default_factory=list)


class _TooManyBadBytes(Exception):
    pass


# The codec error handler is global; the offsets it records go to this thread's decode.
_current = threading.local()
_ERROR_HANDLER = "qa-ingest-replace-counted"


def _replace_counted(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    state: _Replaced | None = getattr(_current, "state", None)
    if state is None:
        raise exc
    state.offsets.extend(range(exc.start, exc.end))
    if len(state.offsets) > state.allowed:
        raise _TooManyBadBytes
    return "\ufffd", exc.end


codecs.register_error(_ERROR_HANDLER, _replace_counted)


def _looks_like_text(text: str) -> bool:
    """False if too many characters are controls, private-use or unassigned code points."""
    if not text:
        return True
    odd = sum(
        1
        for char in text
        if char not in _TEXT_CONTROLS and unicodedata.category(char) in ("Cc", "Co", "Cn")
    )
    return odd <= len(text) * _MAX_NON_TEXT_SHARE
