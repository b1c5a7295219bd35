"""Word .docx files -> Documents (python-docx).

Paragraphs keep their order with tables (each table row is one paragraph, its cells joined by
spaces). A paragraph in a heading style ("Title", "Heading 1"…, also the Chinese "标题 1")
is a heading, so it becomes a section; list styles are list items. The document properties
give the title when the text has no heading, and the author when no byline names one; its
dates are when the file was made, not the news date, and are not used.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
import zlib
from pathlib import Path

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml.etree import XMLSyntaxError

from .article import Metadata, as_text, build_documents, fill_missing
from .document import Document
from .load_errors import LoadError
from .markdown_text import RawBlock, collapse_whitespace
from .news_conventions import byline_names

logger = logging.getLogger(__name__)

_HEADING_STYLE = re.compile(r"^(?:title|subtitle|heading\s*\d|标题(?:\s*\d)?|副标题)$", re.I)
_LIST_STYLE = re.compile(r"^(?:list|列表)", re.I)


def read_docx(data: bytes, path: Path, doc_id: str, split: bool = True) -> list[Document]:
    """The documents of a .docx file; raises `LoadError` for a broken or empty one."""
    try:
        document = docx.Document(io.BytesIO(data))
        blocks: list[RawBlock] = []
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                blocks.extend(_paragraph_block(item))
            elif isinstance(item, Table):
                blocks.extend(_table_blocks(item))
    except (
        PackageNotFoundError, zipfile.BadZipFile, zlib.error, XMLSyntaxError, KeyError, ValueError
    ) as exc:
        raise LoadError(f"not a readable .docx file: {type(exc).__name__}: {exc}") from None
    properties = document.core_properties
    has_heading = any(block.is_heading for block in blocks)
    meta = Metadata(
        title=None if has_heading else as_text(properties.title),
        category=as_text(properties.category),
    )
    try:
        documents = build_documents(blocks, meta, doc_id=doc_id, path=str(path), split=split)
    except ValueError as exc:
        raise LoadError(f".docx: {exc}") from None
    # The properties' author is often whoever made the file: a byline in the text wins.
    author = byline_names(properties.author) if properties.author else None
    return fill_missing(documents, author=author)


def _paragraph_block(paragraph: Paragraph) -> list[RawBlock]:
    text = collapse_whitespace(paragraph.text)
    if not text:
        return []
    style = paragraph.style.name if paragraph.style is not None else ""
    return [
        RawBlock(
            text,
            is_heading=_HEADING_STYLE.match(style or "") is not None,
            is_list_item=_LIST_STYLE.match(style or "") is not None,
        )
    ]


def _table_blocks(table: Table) -> list[RawBlock]:
    blocks = []
    for row in table.rows:
        # A merged cell appears once per grid column it spans; keep it once.
        cells = list(dict.fromkeys(collapse_whitespace(cell.text) for cell in row.cells))
        text = " ".join(cell for cell in cells if cell)
        if text:
            blocks.append(RawBlock(text, is_list_item=True))
    return blocks
