"""News exports -> Documents: JSON Lines, JSON and CSV files with one article per record.

Each record is its own document. Its fields are found by name: `DEFAULT_FIELD_NAMES` lists
the names tried (case-insensitive) for each document field, and `ingest.export_fields` in
config.yaml replaces them for a field ({content: body_text} reads only "body_text").

A record's id is "<file id>-<its id field>" when it has one, else "<file id>-" and 12 hex
digits of a hash of its URL, else of its title and date, else of its text: the same record
gets the same id on every run, wherever it sits in the file. A record without text is logged
and skipped; the file fails only when no record is usable.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .article import Metadata, as_strings, as_text, build_documents
from .decoding import decode_text
from .doc_ids import url_safe
from .document import Document
from .html_post import looks_like_html, split_html
from .load_errors import LoadError
from .news_conventions import iso_date
from .text_file import split_text_body

logger = logging.getLogger(__name__)

DEFAULT_FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "id": ("id", "doc_id", "article_id", "news_id", "uuid", "编号"),
    "title": ("title", "headline", "标题", "题目"),
    "content": ("content", "text", "body", "article", "正文", "内容"),
    "date": ("date", "pubdate", "pub_date", "publish_date", "published", "publish_time",
             "pub_time", "datetime", "time", "日期", "发布时间", "发布日期", "时间"),
    "source": ("source", "media", "publisher", "来源", "媒体"),
    "url": ("url", "link", "href", "source_url", "链接", "网址", "原文链接"),
    "author": ("author", "authors", "byline", "reporter", "作者", "记者"),
    "category": ("category", "channel", "section", "栏目", "分类", "频道"),
    "tags": ("tags", "keywords", "标签", "关键词"),
}
# Keys under which a .json file may hold its list of records.
_RECORD_LISTS = ("articles", "records", "items", "data", "news", "documents", "docs")
_HASH_CHARS = 12
_CSV_DELIMITERS = ",\t;|"

# Articles in a CSV cell are longer than the csv module's default field limit (128 KiB).
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def read_export(
    data: bytes, path: Path, file_id: str, field_names: Mapping[str, str] | None = None
) -> list[Document]:
    """One document per usable record of a .jsonl, .json or .csv export."""
    text = decode_text(data, path.name).lstrip("\ufeff")
    if not text.strip():
        raise LoadError("empty file")
    suffix = path.suffix.lower()
    records = _csv_records(text) if suffix == ".csv" else _json_records(text, path)
    names = {field: (name,) for field, name in (field_names or {}).items()}
    names = {**DEFAULT_FIELD_NAMES, **names}
    documents: list[Document] = []
    skipped = 0
    seen: set[str] = set()
    for where, record in records:
        try:
            document = _record_document(record, names, path, file_id)
            if document.doc_id in seen:
                raise ValueError(f"same id as an earlier record ({document.doc_id})")
        except ValueError as exc:
            skipped += 1
            logger.warning("%s, %s: record skipped: %s", path, where, exc)
        else:
            seen.add(document.doc_id)
            documents.append(document)
    if not documents:
        tried = ", ".join(names["content"])
        raise LoadError(
            f"no usable records ({skipped} skipped; text is read from {tried}: "
            "map your field names with ingest.export_fields in config.yaml)"
        )
    return documents


def _json_records(text: str, path: Path) -> Iterator[tuple[str, Any]]:
    """Records of a JSON Lines file, or of a .json file holding a list (or one record)."""
    if path.suffix.lower() == ".json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            pass  # JSON Lines saved as .json
        else:
            yield from _records_in(value)
            return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", json.loads(line)
        except json.JSONDecodeError as exc:
            logger.warning("%s, line %d: not JSON (%s); skipped", path, number, exc.msg)


def _records_in(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key in _RECORD_LISTS:
            if isinstance(value.get(key), list):
                value = value[key]
                break
        else:
            value = [value]
    if not isinstance(value, list):
        raise LoadError("JSON holds neither records nor a list of them")
    for number, record in enumerate(value, start=1):
        yield f"record {number}", record


def _csv_records(text: str) -> Iterator[tuple[str, Any]]:
    # The header line names the fields, so the delimiter it uses most is the file's (the
    # article text below may hold any of them).
    header = text.split("\n", 1)[0]
    delimiter = max(_CSV_DELIMITERS, key=header.count)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            yield f"line {reader.line_num}", row
    except csv.Error as exc:
        raise LoadError(f"CSV: {exc} (line {reader.line_num})") from None


def _record_document(
    record: Any, names: Mapping[str, tuple[str, ...]], path: Path, file_id: str
) -> Document:
    if not isinstance(record, dict):
        raise ValueError(f"not an object with fields but {type(record).__name__}")
    by_name = {str(key).strip().lower(): value for key, value in record.items() if key}

    def field(name: str) -> Any:
        for candidate in names[name]:
            value = by_name.get(candidate.lower())
            if value not in (None, ""):
                return value
        return None

    content = field("content")
    if not isinstance(content, str) or not content.strip():
        raise ValueError("no text (fields tried: " + ", ".join(names["content"]) + ")")
    title = as_text(field("title"))
    body = content.replace("\r\n", "\n").replace("\r", "\n")
    if looks_like_html(body):
        raw_blocks, rejoin = split_html(body), False
    else:
        # One line is one paragraph in exports; split_text_body wants blank lines between.
        raw_blocks = split_text_body(body.replace("\n", "\n\n"), find_headline=title is None)
        rejoin = True
    categories = as_strings(field("category"))
    meta = Metadata(
        title=title,
        date=_date(field("date"), path),
        source=as_text(field("source")),
        url=as_text(field("url")),
        author=as_text(field("author")),
        category=categories[0] if categories else None,
        tags=as_strings(field("tags")),
    )
    doc_id = f"{file_id}-{_record_key(field('id'), meta, content)}"
    (document,) = build_documents(
        raw_blocks, meta, doc_id=doc_id, path=str(path), rejoin=rejoin, split=False
    )
    return document


def _record_key(record_id: Any, meta: Metadata, content: str) -> str:
    """The record's own id, else a hash of what identifies it (URL; title and date; text)."""
    if record_id is not None and not isinstance(record_id, (dict, list)):
        key = url_safe(str(record_id).strip())
        if key != "_":
            return key
    if meta.url:
        basis = meta.url
    elif meta.title:
        basis = f"{meta.title}\n{meta.date or ''}"
    else:
        basis = content.strip()
    return hashlib.sha1(basis.encode("utf-8")).hexdigest()[:_HASH_CHARS]


def _date(value: Any, path: Path) -> str | None:
    date = iso_date(value)
    if date is None and value not in (None, ""):
        logger.warning("%s: unrecognised date %r", path, value)
    return date
