"""Text files -> Documents: front-matter posts (HTML or Markdown body), Markdown, plain text.

A file may start with YAML front matter (title, date, categories, tags, source, url); its body
is HTML (`<p>` paragraphs, as in the shipped posts) or plain text / Markdown. In a plain-text
body without a front matter title, a short first line without sentence-final punctuation is
the headline, kept apart from the first paragraph.
"""

from __future__ import annotations

import logging
from pathlib import Path

from qa.ingest.document import Document

from .article import Metadata, as_strings, as_text, build_documents
from .decoding import decode_text
from .html_post import looks_like_html, split_html
from .load_errors import LoadError
from .markdown_text import RawBlock, split_front_matter, split_markdown
from .news_conventions import is_headline, iso_date

logger = logging.getLogger(__name__)


def read_text_file(data: bytes, path: Path, doc_id: str, split: bool = True) -> list[Document]:
    """The documents of one text file's bytes; raises `LoadError` if nothing is usable."""
    text = decode_text(data, path.name).replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise LoadError("empty file")
    meta, body = split_front_matter(text, path.name)
    title = as_text(meta.get("title"))
    date = iso_date(meta.get("date"))
    if date is None and meta.get("date") is not None:
        logger.warning("%s: unrecognised date %r", path, meta.get("date"))
    categories = as_strings(meta.get("categories", meta.get("category")))
    metadata = Metadata(
        title=title,
        date=date,
        source=as_text(meta.get("source")),
        url=as_text(meta.get("url")),
        author=as_text(meta.get("author")),
        category=categories[0] if categories else None,
        tags=as_strings(meta.get("tags", meta.get("tag"))),
    )
    is_html = looks_like_html(body)
    if is_html:
        raw_blocks = split_html(body)
    else:
        raw_blocks = split_text_body(body, find_headline=title is None)
    try:
        return build_documents(
            raw_blocks, metadata, doc_id=doc_id, path=str(path), rejoin=not is_html, split=split
        )
    except ValueError as exc:
        raise LoadError(str(exc)) from None


def split_text_body(body: str, find_headline: bool = True) -> list[RawBlock]:
    """Paragraphs of a plain-text / Markdown body; its first line is a heading when it reads
    as a headline (`is_headline`) and text follows it."""
    lines = body.split("\n")
    first = next((index for index, line in enumerate(lines) if line.strip()), None)
    if find_headline and first is not None and is_headline(lines[first]):
        rest = "\n".join(lines[first + 1 :])
        if any(char.isalnum() for char in rest):
            logger.debug("first line %r is the headline", lines[first].strip())
            return [RawBlock(lines[first].strip(), is_heading=True), *split_markdown(rest)]
    return split_markdown(body)
