"""The write API: add, replace and remove documents while the service runs.

`POST /api/documents` takes a JSON document or a multipart file upload, `PUT
/api/documents/<doc_id>` replaces, `DELETE /api/documents/<doc_id>` removes. Every
route needs an API key. A write is embedded in the request and committed in one
transaction; the next question (on any thread) sees it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from qa.index.indexer import Indexer
from qa.index.store import API_ORIGIN
from qa.ingest.document import Block, Document
from qa.ingest.loader import LoadError, load_file
from qa.web.auth import require_key
from qa.web.errors import ApiError

write_api = Blueprint("write_api", __name__, url_prefix="/api")

DOC_ID = re.compile(r"^[A-Za-z0-9\u3400-\u9fff][\w.\-\u3400-\u9fff]{0,127}$")
DOCUMENT_FIELDS = {"doc_id", "title", "text", "date", "source", "url", "category", "tags"}
_BLANK_LINES = re.compile(r"\n\s*\n")
_UNSAFE_NAME = re.compile(r"[^\w.\-]+")


@write_api.before_request
def _authorise() -> None:
    request.max_content_length = current_app.config["QA"].server.max_upload_bytes
    require_key(current_app.extensions["qa_api_keys"])


@write_api.post("/documents")
def add_document() -> tuple[Response, int]:
    """Add (or, for a known id, replace) a document sent as JSON or as a file."""
    return _store(_documents_from_request(doc_id=None))


@write_api.put("/documents/<doc_id>")
def replace_document(doc_id: str) -> tuple[Response, int]:
    """Replace the document `doc_id` (or create it)."""
    _check_id(doc_id)
    return _store(_documents_from_request(doc_id=doc_id))


@write_api.delete("/documents/<doc_id>")
def delete_document(doc_id: str) -> Response:
    """Remove the document `doc_id`; 404 if there is none."""
    found = _indexer().remove([doc_id])
    if not found[doc_id]:
        raise ApiError(404, "document_not_found", f"no document with id {doc_id!r}")
    return jsonify({"doc_id": doc_id, "status": "removed",
                    "generation": _retriever().engine.status()["generation"]})


def _retriever():
    return current_app.extensions["qa_retriever"]


def _indexer() -> Indexer:
    retriever = _retriever()
    return Indexer(current_app.config["QA"], retriever.engine, lambda: retriever.embedder,
                   tokenizer=retriever.tokenizer)


def _store(documents: list[Document]) -> tuple[Response, int]:
    indexer = _indexer()
    results = []
    for document in documents:
        status, chunks = indexer.put_document(document, origin=API_ORIGIN)
        results.append({"doc_id": document.doc_id, "status": status, "chunks": chunks})
    first = results[0]
    body = first | {"documents": results,
                    "generation": _retriever().engine.status()["generation"]}
    created = any(r["status"] == "added" for r in results)
    return jsonify(body), 201 if created else 200


def _documents_from_request(doc_id: str | None) -> list[Document]:
    if request.mimetype == "multipart/form-data":
        return _documents_from_upload(doc_id)
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type",
                       "send the document as application/json or a multipart/form-data "
                       "upload with a `file` field")
    try:
        body = json.loads(request.get_data(cache=False).decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_encoding", "the body is not UTF-8") from None
    except ValueError as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_json", "the body must be one JSON object")
    return [_document_from_fields(body, doc_id)]


def _document_from_fields(fields: dict[str, Any], doc_id: str | None) -> Document:
    unknown = sorted(set(fields) - DOCUMENT_FIELDS)
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field {unknown[0]!r} "
                       f"(accepted: {', '.join(sorted(DOCUMENT_FIELDS))})")
    values = {name: _optional_text(fields, name)
              for name in ("title", "text", "date", "source", "url", "category")}
    for required in ("title", "text"):
        if not values[required]:
            raise ApiError(400, "missing_field", f"the document needs a non-empty {required!r}")
    given_id = _optional_text(fields, "doc_id")
    if doc_id and given_id and given_id != doc_id:
        raise ApiError(400, "invalid_document",
                       f"the body's doc_id {given_id!r} differs from the URL's {doc_id!r}")
    paragraphs = [" ".join(p.split()) for p in _BLANK_LINES.split(values["text"].strip())]
    blocks = tuple(Block(p) for p in paragraphs if p)
    tags = fields.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ApiError(400, "invalid_document", "tags must be a list of strings")
    identity = doc_id or given_id or _derived_id(values)
    _check_id(identity)
    return Document(
        doc_id=identity, path=API_ORIGIN, blocks=blocks, title=values["title"],
        date=_iso_date(values["date"]), source=values["source"], url=values["url"],
        category=values["category"], tags=tuple(dict.fromkeys(tags)),
    )


def _optional_text(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_document", f"{name!r} must be a string")
    return value.strip() or None


def _derived_id(values: dict[str, str | None]) -> str:
    """A stable id for a document sent without one: from its URL if it has one (so a
    corrected article replaces the old), else from its title and text (so sending it
    again is a no-op)."""
    basis = values["url"] or f"{values['title']}\n{values['text']}"
    return "api-" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]


def _check_id(doc_id: str) -> None:
    if not DOC_ID.fullmatch(doc_id):
        raise ApiError(400, "invalid_document",
                       "doc_id must be 1-128 letters, digits, CJK characters, '.', '_' or "
                       "'-', starting with a letter, digit or CJK character")


def _iso_date(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise ApiError(400, "invalid_document",
                       f"date must be YYYY-MM-DD, got {text!r}") from None


def _documents_from_upload(doc_id: str | None) -> list[Document]:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(400, "missing_field", "the upload needs a `file` field")
    name = _UNSAFE_NAME.sub("_", Path(upload.filename).name).strip("._") or "upload"
    with tempfile.TemporaryDirectory(prefix="qa-upload-") as folder:
        path = Path(folder) / name
        upload.save(path)
        try:
            documents = load_file(path, Path(folder), current_app.config["QA"].ingest)
        except LoadError as exc:
            raise ApiError(400, "unreadable_file", f"{name}: {exc}") from None
    if doc_id is not None and len(documents) != 1:
        raise ApiError(400, "invalid_document",
                       f"{name} holds {len(documents)} documents; PUT replaces exactly one")
    # A stable path (not the temporary folder), so the same upload twice is a no-op.
    documents = [replace(d, path=f"upload/{name}") for d in documents]
    if doc_id is not None:
        documents = [replace(documents[0], doc_id=doc_id)]
    for document in documents:
        _check_id(document.doc_id)
    return documents
