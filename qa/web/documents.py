"""Documents as the API shows them: metadata, and the clean text as numbered blocks."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from qa.ingest.document import Document

# `GET /api/documents` pages.
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s), else None: a corpus must not smuggle in `javascript:` links."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def document_summary(document: Document) -> dict[str, Any]:
    """A document's metadata, as listed by `GET /api/documents`."""
    numbers = document.paragraph_numbers()
    return {
        "doc_id": document.doc_id,
        "title": document.title,
        "date": document.date,
        "source": document.source,
        "url": safe_url(document.url),
        "category": document.category,
        "tags": list(document.tags),
        "paragraphs": sum(1 for number in numbers if number is not None),
    }


def document_blocks(document: Document) -> list[dict[str, Any]]:
    """Each block with its kind, paragraph number (headings: None) and offsets in the text."""
    return [
        {
            "kind": "heading" if block.is_heading else "paragraph",
            "number": number,
            "text": block.text,
            "char_start": start,
            "char_end": end,
        }
        for block, number, (start, end) in zip(
            document.blocks, document.paragraph_numbers(), document.block_spans(), strict=True
        )
    ]


def document_detail(document: Document) -> dict[str, Any]:
    """Metadata plus the blocks of the clean text, as `GET /api/documents/<doc_id>` shows it."""
    return document_summary(document) | {"blocks": document_blocks(document)}
