"""PDF files -> Documents, from their text layer (pypdf).

A PDF's text comes out as visual lines. Lines are joined into paragraphs: a paragraph ends
at a line that ends a sentence or stops short of the right margin (narrower than
`FULL_LINE_SHARE` of the widest line), so a headline, a date line and a byline stay apart
from the text, and a sentence wrapped over several lines is one paragraph again. Page-number
lines ("- 3 -", "第3页") and running headers and footers (a line on most pages) are dropped;
a paragraph cut by a page break is rejoined. A PDF whose pages have no text (a scan) is
skipped with that reason: there is no OCR here.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pypdf
from pypdf.errors import PyPdfError

from .article import Metadata, as_text, build_documents, fill_missing
from .document import Document
from .load_errors import LoadError
from .markdown_text import RawBlock, collapse_whitespace, is_wide, join_lines
from .news_conventions import byline_names, is_headline
from .sentences import ends_sentence

logger = logging.getLogger(__name__)

# A line at least this share of the widest line's width reaches the right margin.
FULL_LINE_SHARE = 0.85
_PAGE_NUMBER = re.compile(
    r"^(?:[-–—\s]*\d{1,4}[-–—\s]*|第\s*\d{1,4}\s*页(?:\s*[/，,]?\s*共\s*\d{1,4}\s*页)?"
    r"|\d{1,4}\s*/\s*\d{1,4}|page\s*\d{1,4}(?:\s*of\s*\d{1,4})?)$",
    re.I,
)
_DIGITS = re.compile(r"\d+")
# Generic document titles that PDF writers fill in by themselves.
_PLACEHOLDER_TITLE = re.compile(r"^(?:untitled|无标题|microsoft word\b.*|.*\.(?:docx?|pdf))$", re.I)


def read_pdf(data: bytes, path: Path, doc_id: str, split: bool = True) -> list[Document]:
    """The documents of a PDF's text layer; raises `LoadError` for a PDF without text, an
    encrypted one or a broken file."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("encrypted PDF (needs a password)")
        pages = [_page_lines(page.extract_text() or "") for page in reader.pages]
        info = reader.metadata
    except (PyPdfError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        # pypdf reports a damaged file with its own errors and, deeper down, plain ones.
        raise LoadError(f"not a readable PDF: {type(exc).__name__}: {exc}") from None
    pages = _without_running_lines(pages)
    lines = [line for page in pages for line in page]
    if not any(char.isalnum() for line in lines for char in line):
        raise LoadError("PDF has no text layer (a scan?): nothing to index without OCR")
    blocks = _paragraphs(pages)
    # The headline printed on the page wins over the document properties' title, which PDF
    # writers often fill with a file name. The creation date is when the file was made, not
    # the news date, so it is not used.
    title = as_text(info.title) if info is not None else None
    if blocks[0].is_heading or (title is not None and _PLACEHOLDER_TITLE.match(title)):
        title = None
    try:
        documents = build_documents(
            blocks, Metadata(title=title), doc_id=doc_id, path=str(path), split=split
        )
    except ValueError as exc:
        raise LoadError(f"PDF: {exc}") from None
    # A byline on the page wins over the properties' author (often whoever made the file).
    author = byline_names(info.author) if info is not None and info.author else None
    return fill_missing(documents, author=author)


def _page_lines(text: str) -> list[str]:
    """A page's non-empty text lines, without page numbers and stray control characters
    (some PDF writers map each glyph to a NUL plus the character)."""
    lines = []
    for raw in text.split("\n"):
        line = collapse_whitespace(
            "".join(char for char in raw if unicodedata.category(char) != "Cc" or char == "\t")
        )
        if line and not _PAGE_NUMBER.match(line):
            lines.append(line)
    return lines


def _without_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Pages without their running headers and footers: a line (digits aside, for "第3版")
    printed on more than half of the pages, and on at least two."""
    if len(pages) < 2:
        return pages
    counts = Counter(key for page in pages for key in {_DIGITS.sub("#", line) for line in page})
    running = {key for key, count in counts.items() if count >= 2 and count > len(pages) / 2}
    if running:
        logger.debug("dropping running headers/footers %s", sorted(running))
    return [[line for line in page if _DIGITS.sub("#", line) not in running] for page in pages]


def _paragraphs(pages: list[list[str]]) -> list[RawBlock]:
    """Lines joined into paragraphs; the first line is a heading when it reads as a headline."""
    widest = max((_width(line) for page in pages for line in page), default=0)
    blocks: list[RawBlock] = []
    current: list[str] = []
    first = True
    for page in pages:
        for line in page:
            if first and is_headline(line):
                blocks.append(RawBlock(line, is_heading=True))
                first = False
                continue
            first = False
            current.append(line)
            if ends_sentence(line) or _width(line) < widest * FULL_LINE_SHARE:
                blocks.append(RawBlock(join_lines(current)))
                current = []
        # A paragraph still open at the end of a page is cut by the page break; the
        # article builder glues it to its continuation.
        if current:
            blocks.append(RawBlock(join_lines(current)))
            current = []
    return blocks


def _width(line: str) -> int:
    """Display width: CJK and full-width characters count two."""
    return sum(2 if is_wide(char) else 1 for char in line)
