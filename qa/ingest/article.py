"""Raw paragraphs of any format + the file's own metadata -> clean `Document`s.

Every reader (text, web page, PDF, Word, export record) ends here, so the same rules apply
to all: source ("文章来源：…"), URL and "返回…" navigation lines become metadata or are
dropped; bylines and the date/source lines near the top give the author, date and source and
are not passages; paragraphs cut by blank lines are rejoined; and a file whose headings each
open a separately written report is split into one document per report (see
`split_reports`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .document import Block, Document
from .markdown_text import (
    RawBlock,
    collapse_whitespace,
    has_word_char,
    is_byline,
    rejoin_cut_paragraphs,
    strip_inline_markup,
)
from .news_conventions import byline_names, opens_report, read_dateline, split_byline_prefix

logger = logging.getLogger(__name__)

# A title taken from the first line of text is cut to about this many characters.
TITLE_FALLBACK_CHARS = 40
# Date/source lines and opening bylines count only among this many first paragraphs.
OPENING_PARAGRAPHS = 5

_SOURCE_PREFIX = r"(?:文章|稿件|新闻|本文)?来源\s*[:：]\s*"
_SOURCE_BRACKETED = re.compile(r"^[（(]\s*" + _SOURCE_PREFIX + r"(.+?)\s*[）)]$")
_SOURCE_BARE = re.compile(r"^" + _SOURCE_PREFIX + r"(.+)$")
_SOURCE_MAX_CHARS = 40
_NEXT_FIELD = re.compile(r"\s+(?:作者|记者|编辑|责任编辑|责编|发布时间|时间|日期)\s*[:：]")
_URL_LINE = re.compile(r"^(?:(?:原文链接|原文地址|链接)\s*[:：]\s*)?<?(https?://[^\s<>]+)>?$")
_NAV_LINKS = re.compile(r"^(?:\[返回[^\]]*\]\([^)]*\)[\s｜|/·]*)+$")
_LIST_SEPARATORS = re.compile(r"[,，、\s]+")
_EDITOR_NOTE = re.compile(r"^(?:编者按|编者的话|编者注|编辑按|编前语|编后语|按语|导语|导读)[:：]?$")


@dataclass(frozen=True)
class Metadata:
    """What a file says about itself (front matter, HTML meta tags, document properties)."""

    title: str | None = None
    date: str | None = None
    source: str | None = None
    url: str | None = None
    author: str | None = None
    category: str | None = None
    tags: tuple[str, ...] = ()


def build_documents(
    raw_blocks: Sequence[RawBlock],
    meta: Metadata,
    *,
    doc_id: str,
    path: str,
    rejoin: bool = True,
    split: bool = True,
) -> list[Document]:
    """The documents of one file: one, or one per report when `split` finds several.

    `rejoin` glues paragraphs cut mid-sentence (text formats; not for HTML, where each
    `<p>` is explicit). Raises `ValueError` when no paragraph of text is left.
    """
    groups = split_reports(raw_blocks) if split else [list(raw_blocks)]
    parts = [_clean(group, rejoin) for group in groups]
    if len(parts) > 1 and not all(_has_paragraph(blocks) for blocks, _ in parts):
        parts = [_clean(list(raw_blocks), rejoin)]  # a "report" with no text: do not split
    if not any(_has_paragraph(blocks) for blocks, _ in parts):
        raise ValueError("no text paragraphs")
    if len(parts) == 1:
        blocks, found = parts[0]
        # What the file says explicitly wins over what its body's lines say.
        return [_document(doc_id, path, blocks, meta, found, meta.title)]
    logger.info("%s: %d separate reports, one document each", path, len(parts))
    documents = []
    for number, (group, (blocks, found)) in enumerate(zip(groups, parts, strict=True), start=1):
        part_id = doc_id if number == 1 else f"{doc_id}-{number}"
        # Each report's own headline and lines win; the file's metadata fills the gaps.
        title = _report_headline(group)
        documents.append(_document(part_id, path, blocks, found, meta, title))
    return documents


def split_reports(raw_blocks: Sequence[RawBlock]) -> list[list[RawBlock]]:
    """Cut a file into reports at each heading directly followed by a byline, a paragraph
    opening with one, or a date/source line; only when at least two headings do so.

    A heading followed by prose is a section of one article; a heading followed by who wrote
    it and when is the headline of its own report. Anything before the first such heading
    (an editor's note introducing them all) stays with the first report.
    """
    starts = _report_starts(raw_blocks)
    if len(starts) < 2:
        return [list(raw_blocks)]
    bounds = [0, *starts[1:], len(raw_blocks)]
    return [list(raw_blocks[start:end]) for start, end in zip(bounds, bounds[1:], strict=False)]


def _report_starts(raw_blocks: Sequence[RawBlock]) -> list[int]:
    """Indexes of the headings directly followed by a byline or a date/source line."""
    return [
        index
        for index, block in enumerate(raw_blocks[:-1])
        if block.is_heading
        and not raw_blocks[index + 1].is_heading
        and opens_report(strip_inline_markup(raw_blocks[index + 1].text))
    ]


def _report_headline(group: list[RawBlock]) -> str | None:
    """The headline of a report: its heading that a byline or date line follows (not a
    heading before it, such as an editor's note or the whole file's title)."""
    starts = _report_starts(group)
    if not starts:
        return None
    return collapse_whitespace(strip_inline_markup(group[starts[0]].text)) or None


def _clean(raw_blocks: list[RawBlock], rejoin: bool) -> tuple[list[Block], Metadata]:
    """Clean blocks, and the metadata their lines gave (source, URL, date, author)."""
    raw_blocks, source, url = _take_metadata_lines(raw_blocks)
    date: str | None = None
    author: str | None = None
    cleaned: list[RawBlock] = []
    paragraphs_kept = 0
    for block in raw_blocks:
        text = collapse_whitespace(strip_inline_markup(block.text))
        opening = paragraphs_kept < OPENING_PARAGRAPHS
        if not text:
            continue
        if not block.is_heading and is_byline(text):
            logger.debug("dropping byline %r", text)
            author = author or byline_names(text)
            continue
        dateline = read_dateline(text) if opening and not block.is_heading else None
        if dateline is not None:
            logger.debug("dropping date/source line %r", text)
            date, source = date or dateline.date, source or dateline.source
            author = author or dateline.author
            continue
        if opening and not block.is_heading:
            names, agency, rest = split_byline_prefix(text)
            if names is not None:
                author, source, text = author or names, source or agency, rest
        cleaned.append(replace(block, text=text))
        paragraphs_kept += not block.is_heading
    if rejoin:
        cleaned = rejoin_cut_paragraphs(cleaned)
    # After rejoining, so that a cut-off "。”" still reaches its sentence; what is left
    # without any letter, digit or CJK character ("…………", "——") is not text.
    blocks = [Block(b.text, is_heading=b.is_heading) for b in cleaned if has_word_char(b.text)]
    return blocks, Metadata(date=date, source=source, url=url, author=author)


def _document(
    doc_id: str, path: str, blocks: list[Block], first: Metadata, second: Metadata,
    title: str | None,
) -> Document:
    """A Document whose metadata comes from `first`, else `second`."""
    return Document(
        doc_id=doc_id,
        path=path,
        blocks=tuple(blocks),
        title=title or _title_from_blocks(blocks) or doc_id,
        date=first.date or second.date,
        source=first.source or second.source,
        url=first.url or second.url,
        category=first.category or second.category,
        tags=first.tags or second.tags,
        author=first.author or second.author,
    )


def _has_paragraph(blocks: list[Block]) -> bool:
    return any(not block.is_heading for block in blocks)


def _take_metadata_lines(
    blocks: list[RawBlock],
) -> tuple[list[RawBlock], str | None, str | None]:
    """Remove source, URL and navigation lines; return the rest, the source and the URL."""
    kept: list[RawBlock] = []
    source: str | None = None
    url: str | None = None
    for block in blocks:
        text = collapse_whitespace(block.text)
        found_source = source_of(text)
        url_match = _URL_LINE.match(text)
        if found_source is not None:
            source = source or found_source
        elif url_match is not None:
            url = url or url_match.group(1)
        elif _NAV_LINKS.match(text) is None:
            kept.append(block)
    return kept, source, url


def source_of(text: str) -> str | None:
    """The X of a whole-paragraph "（文章来源：X）", "(文章来源:X)" or "来源：X" line."""
    match = _SOURCE_BRACKETED.match(text) or _SOURCE_BARE.match(text)
    if match is None:
        return None
    # "来源：浙江日报 作者：张三": the source ends where the next field starts.
    source = _NEXT_FIELD.split(match.group(1))[0].strip()
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


def as_text(value: object) -> str | None:
    """A metadata scalar as clean text; None when missing, blank or not a scalar."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = collapse_whitespace(str(value))
    return text or None


def as_strings(value: object) -> tuple[str, ...]:
    """Categories/tags given as a list or as one string ("a b", "a, b"), deduplicated."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else _LIST_SEPARATORS.split(str(value))
    strings = (collapse_whitespace(str(item)) for item in items if item is not None)
    return tuple(dict.fromkeys(item for item in strings if item))


def fill_missing(documents: list[Document], **values: str | None) -> list[Document]:
    """The documents with each named field set to the given value where it is still None:
    for what a file says less reliably than its text (a page's site name, the author in a
    file's properties)."""
    filled = []
    for document in documents:
        changes = {
            name: value
            for name, value in values.items()
            if value is not None and getattr(document, name) is None
        }
        filled.append(replace(document, **changes) if changes else document)
    return filled
