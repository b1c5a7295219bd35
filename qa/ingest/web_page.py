"""Saved news web pages -> Documents, through trafilatura's main-content extraction.

trafilatura finds the article in the page and leaves out navigation, breadcrumbs, related
links, comments and footers; it also reads the title, the publication date (`<meta
name="pubdate">` and the like), the author, the site name and the canonical URL. The text it
keeps then goes through the same news conventions as every other format, so the
"2024-05-10 来源：浙江日报" line under the headline gives the date and source.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import lxml.html
import trafilatura
from lxml.etree import ParserError

from .article import Metadata, as_text, build_documents, fill_missing
from .document import Document
from .load_errors import LoadError
from .markdown_text import RawBlock, collapse_whitespace
from .news_conventions import byline_names, iso_date

logger = logging.getLogger(__name__)

# Footer lines that can survive extraction on small pages.
_BOILERPLATE = re.compile(
    r"版权所有|copyright|©|ICP备|ICP证|未经(?:书面)?授权|不得转载|禁止转载|公网安备", re.I
)
_BOILERPLATE_MAX_CHARS = 80
_AUTHOR_META = (
    '//meta[@name="author" or @property="article:author" or @name="byline"]/@content'
)


def read_web_page(data: bytes, path: Path, doc_id: str, split: bool = True) -> list[Document]:
    """The documents of a saved HTML page; raises `LoadError` if no article text is found."""
    extracted = trafilatura.bare_extraction(
        data,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        # Dates only from the page's markup (meta tags, <time>), not guessed from its URL.
        date_extraction_params={"original_date": True, "extensive_search": False},
    )
    if extracted is None or extracted.body is None:
        raise LoadError("no article text found in the web page")
    raw_blocks = [block for block in _blocks(extracted.body) if not _is_boilerplate(block.text)]
    meta = Metadata(
        title=as_text(extracted.title),
        date=iso_date(extracted.date),
        url=as_text(extracted.url),
        author=_author(extracted.author, data),
        category=as_text(extracted.categories[0]) if extracted.categories else None,
        tags=tuple(extracted.tags or ()),
    )
    try:
        documents = build_documents(
            raw_blocks, meta, doc_id=doc_id, path=str(path), rejoin=False, split=split
        )
    except ValueError as exc:
        raise LoadError(f"web page: {exc}") from None
    # The site is the source only when the article does not name the paper it came from.
    return fill_missing(documents, source=as_text(extracted.sitename))


def _blocks(body: lxml.html.HtmlElement) -> list[RawBlock]:
    """trafilatura's output tree (<head>, <p>, <list>/<item>, <quote>, <table>) as blocks."""
    blocks: list[RawBlock] = []
    for element in body:
        tag = element.tag
        if tag == "list":
            for item in element.iter("item"):
                blocks.append(RawBlock(_text(item), is_list_item=True))
        elif tag == "table":
            for row in element.iter("row"):
                cells = [_text(cell) for cell in row.iter("cell")]
                blocks.append(RawBlock(" ".join(cell for cell in cells if cell)))
        else:
            blocks.append(RawBlock(_text(element), is_heading=tag == "head"))
    return [block for block in blocks if block.text]


def _text(element: lxml.html.HtmlElement) -> str:
    return collapse_whitespace("".join(element.itertext()))


def _is_boilerplate(text: str) -> bool:
    return len(text) <= _BOILERPLATE_MAX_CHARS and _BOILERPLATE.search(text) is not None


def _author(found: str | None, data: bytes) -> str | None:
    """trafilatura's author, else the page's author meta tag: trafilatura drops a name with
    no space in it, which is every Chinese name ("林晓")."""
    if found:
        return byline_names(found)
    try:
        values = lxml.html.fromstring(data).xpath(_AUTHOR_META)
    except (ParserError, ValueError):
        return None
    names = [byline_names(str(value)) for value in values]
    return next((name for name in names if name), None)

