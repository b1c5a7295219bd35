"""Corpus files -> `Document`s: decoding, front matter, body parsing and metadata lines.

A corpus file is UTF-8 (with or without BOM) or GB18030 text. It may start with YAML front
matter (title, date, categories, tags); its body is HTML (`<p>` paragraphs) or plain text /
Markdown. Source ("文章来源：…"), original URL and "返回…" navigation lines become metadata
or are dropped; everything else is the clean text, as paragraphs and headings.
"""

from __future__ import annotations

import codecs
import datetime as dt
import logging
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .document import Block, Document
from .html_post import looks_like_html, split_html
from .markdown_text import (
    RawBlock,
    collapse_whitespace,
    has_word_char,
    is_byline,
    rejoin_cut_paragraphs,
    split_front_matter,
    split_markdown,
    strip_inline_markup,
)

logger = logging.getLogger(__name__)

# A title taken from the first line of text is cut to about this many characters.
TITLE_FALLBACK_CHARS = 40

_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})")
_LIST_SEPARATORS = re.compile(r"[,，、\s]+")

_SOURCE_PREFIX = r"(?:文章|稿件|新闻|本文)?来源\s*[:：]\s*"
_SOURCE_BRACKETED = re.compile(r"^[（(]\s*" + _SOURCE_PREFIX + r"(.+?)\s*[）)]$")
_SOURCE_BARE = re.compile(r"^" + _SOURCE_PREFIX + r"(.+)$")
_SOURCE_MAX_CHARS = 40
_URL_LINE = re.compile(r"^(?:(?:原文链接|原文地址|链接)\s*[:：]\s*)?<?(https?://[^\s<>]+)>?$")
_NAV_LINKS = re.compile(r"^(?:\[返回[^\]]*\]\([^)]*\)[\s｜|/·]*)+$")
_EDITOR_NOTE = re.compile(r"^(?:编者按|编者的话|编者注|编辑按|编前语|编后语|按语|导语|导读)[:：]?$")

# Decoded text with more than this share of control, private-use or unassigned characters is
# binary that happened to decode (GB18030 accepts many byte sequences).
_MAX_NON_TEXT_SHARE = 0.01
_TEXT_CONTROLS = frozenset("\t\n\r\f\v")


class LoadError(Exception):
    """A file could not be turned into a Document; the message is a short reason."""


@dataclass(frozen=True)
class SkippedFile:
    """A corpus file that was not loaded, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class LoadResult:
    """The documents of a corpus folder, in file-name order, and the files skipped."""

    documents: list[Document]
    skipped: list[SkippedFile]


def load_corpus(folder: Path) -> LoadResult:
    """Load every regular, non-hidden file directly inside `folder`, sorted by name.

    A file that cannot be read or parsed is logged and recorded in `skipped`; it never
    stops the run. Hidden files (".gitkeep") and subfolders are ignored silently. Raises
    `LoadError` only if `folder` itself is missing or unreadable.
    """
    folder = Path(folder)
    try:
        entries = sorted(folder.iterdir(), key=lambda entry: entry.name)
    except OSError as exc:
        raise LoadError(f"cannot list corpus folder {folder}: {exc.strerror or exc}") from exc

    documents: list[Document] = []
    skipped: list[SkippedFile] = []
    loaded_from: dict[str, str] = {}
    for path in entries:
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            document = load_document(path)
        except LoadError as exc:
            reason = str(exc)
        except Exception as exc:  # a parser bug on one file must not lose the whole corpus
            logger.exception("unexpected error loading %s", path)
            reason = f"unexpected error: {type(exc).__name__}: {exc}"
        else:
            if document.doc_id not in loaded_from:
                loaded_from[document.doc_id] = path.name
                documents.append(document)
                continue
            # doc_id is the file stem, so "a.txt" and "a.md" would collide in the index.
            first = loaded_from[document.doc_id]
            reason = f"duplicate doc_id {document.doc_id!r} (already loaded from {first})"
        logger.warning("skipping %s: %s", path, reason)
        skipped.append(SkippedFile(path=str(path), reason=reason))
    logger.info("loaded %d documents from %s, skipped %d", len(documents), folder, len(skipped))
    return LoadResult(documents=documents, skipped=skipped)


def load_document(path: Path) -> Document:
    """Load one corpus file. Raises `LoadError` with a short reason if it cannot be used."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from exc
    text = _decode(data).replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise LoadError("empty file")

    meta, body = split_front_matter(text, path.name)
    blocks, body_source, body_url = _parse_body(body)
    if not any(not block.is_heading for block in blocks):
        raise LoadError("no text paragraphs")

    categories = _as_strings(meta.get("categories", meta.get("category")))
    return Document(
        doc_id=path.stem,
        path=str(path),
        blocks=tuple(blocks),
        title=_as_text(meta.get("title")) or _title_from_blocks(blocks) or path.stem,
        date=_as_iso_date(meta.get("date"), path),
        # Explicit front matter wins over what the body's trailer lines say.
        source=_as_text(meta.get("source")) or body_source,
        url=_as_text(meta.get("url")) or body_url,
        category=categories[0] if categories else None,
        tags=_as_strings(meta.get("tags", meta.get("tag"))),
    )


def _decode(data: bytes) -> str:
    """UTF-8 (BOM optional), else GB18030; anything else is not a corpus text file."""
    if b"\x00" in data:
        raise LoadError("binary file (contains NUL bytes)")
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise LoadError("invalid UTF-8 after a UTF-8 BOM") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise LoadError("not UTF-8 or GB18030 text") from None
        logger.debug("decoded as GB18030")
    if not _looks_like_text(text):
        raise LoadError("binary content (control or unassigned characters)")
    return text


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


def _parse_body(body: str) -> tuple[list[Block], str | None, str | None]:
    """(clean blocks, source, url) of an HTML or plain-text/Markdown body."""
    is_html = looks_like_html(body)
    raw_blocks = split_html(body) if is_html else split_markdown(body)
    raw_blocks, source, url = _take_metadata_lines(raw_blocks)

    cleaned: list[RawBlock] = []
    for block in raw_blocks:
        text = collapse_whitespace(strip_inline_markup(block.text))
        if not block.is_heading and is_byline(text):
            logger.debug("dropping byline %r", text)
        elif text:
            cleaned.append(replace(block, text=text))
    # HTML paragraphs are explicit; only text bodies have paragraphs cut by blank lines.
    if not is_html:
        cleaned = rejoin_cut_paragraphs(cleaned)
    # After rejoining, so that a cut-off "。”" still reaches its sentence; what is left
    # without any letter, digit or CJK character ("…………", "——") is not text.
    blocks = [Block(b.text, is_heading=b.is_heading) for b in cleaned if has_word_char(b.text)]
    return blocks, source, url


def _take_metadata_lines(
    blocks: list[RawBlock],
) -> tuple[list[RawBlock], str | None, str | None]:
    """Remove source, URL and navigation lines; return the rest, the source and the URL."""
    kept: list[RawBlock] = []
    source: str | None = None
    url: str | None = None
    for block in blocks:
        text = collapse_whitespace(block.text)
        found_source = _source_of(text)
        url_match = _URL_LINE.match(text)
        if found_source is not None:
            source = source or found_source
        elif url_match is not None:
            url = url or url_match.group(1)
        elif _NAV_LINKS.match(text) is None:
            kept.append(block)
    return kept, source, url


def _source_of(text: str) -> str | None:
    """The X of a whole-paragraph "（文章来源：X）", "(文章来源:X)" or "来源：X" line."""
    match = _SOURCE_BRACKETED.match(text) or _SOURCE_BARE.match(text)
    if match is None:
        return None
    source = match.group(1).strip()
    # A long value or a full sentence is prose that happens to start with "来源：".
    if len(source) > _SOURCE_MAX_CHARS or any(char in source for char in "。！？"):
        return None
    return source


def _title_from_blocks(blocks: list[Block]) -> str | None:
    """The first heading that is not an editor's note, else the first paragraph, cut short."""
    for block in blocks:
        if block.is_heading and not _EDITOR_NOTE.match(block.text.strip("【】[] ")):
            return block.text
    if not blocks:
        return None
    text = blocks[0].text
    if len(text) > TITLE_FALLBACK_CHARS:
        return text[:TITLE_FALLBACK_CHARS].rstrip() + "…"
    return text


def _as_text(value: Any) -> str | None:
    """A front matter scalar as clean text; None when missing or blank."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = collapse_whitespace(str(value))
    return text or None


def _as_strings(value: Any) -> tuple[str, ...]:
    """Categories/tags given as a list or as one string ("a b", "a, b"), deduplicated."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else _LIST_SEPARATORS.split(str(value))
    strings = (collapse_whitespace(str(item)) for item in items if item is not None)
    return tuple(dict.fromkeys(item for item in strings if item))


def _as_iso_date(value: Any, path: Path) -> str | None:
    """ISO date ("2022-01-17") of a date, a datetime or text like "2022-01-17 20:51:36 +0800"."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()  # the date where it was written, not in UTC
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None:
        return None
    match = _DATE.search(str(value))
    if match is not None:
        try:
            return dt.date(*(int(part) for part in match.groups())).isoformat()
        except ValueError:  # "2022-13-45"
            pass
    logger.warning("%s: unrecognised date %r", path, value)
    return None


def corpus_files(
    folder: Path, settings: object | None = None
) -> tuple[list[Path], list[SkippedFile]]:
    """Every regular, non-hidden file directly inside `folder`, sorted by name."""
    folder = Path(folder)
    try:
        entries = sorted(folder.iterdir(), key=lambda entry: entry.name)
    except OSError as exc:
        raise LoadError(f"cannot list corpus folder {folder}: {exc.strerror or exc}") from exc
    return [p for p in entries if not p.name.startswith(".") and p.is_file()], []


def load_file(path: Path, root: Path | None = None,
              settings: object | None = None) -> list[Document]:
    """The documents of one corpus file (one article per file, for now)."""
    return [load_document(path)]
