"""The JSON API blueprint: ask, health, documents and the OpenAPI document."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request

from qa import __version__
from qa.config import Config
from qa.retriever import Retriever
from qa.web.ask_request import arguments_from_body, arguments_from_query
from qa.web.auth import require_key
from qa.web.documents import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    document_detail,
    document_summary,
)
from qa.web.errors import ApiError
from qa.web.openapi import openapi_document

logger = logging.getLogger(__name__)

api = Blueprint("api", __name__, url_prefix="/api")

def app_config() -> Config:
    """The service's Config (kept whole under one key)."""
    return current_app.config["QA"]


def app_retriever() -> Retriever:
    """The process's one Retriever, built when the app was created."""
    return current_app.extensions["qa_retriever"]


@api.post("/ask")
def ask_post() -> Response:
    """Answer the question in the JSON body."""
    retriever = app_retriever()
    arguments = arguments_from_body(request, retriever, app_config().server.max_body_bytes)
    return jsonify(retriever.ask(**arguments).to_dict())


@api.get("/ask")
def ask_get() -> Response:
    """Answer `?q=…&k=…`, the same as POST."""
    retriever = app_retriever()
    arguments = arguments_from_query(request, retriever)
    return jsonify(retriever.ask(**arguments).to_dict())


@api.before_request
def _read_key() -> None:
    """Reads are open unless the config asks for keys on them too."""
    if (app_config().server.keys_for_reads
            and request.endpoint not in ("api.health", "api.openapi")):
        require_key(current_app.extensions["qa_api_keys"])


@api.get("/health")
def health() -> Response:
    """Status, model, index counts, generation and last change, and version."""
    retriever = app_retriever()
    checked = current_app.extensions["qa_health"]()
    if not checked.ok:
        # A damaged index must never look healthy: 503, with what is wrong.
        response = jsonify({"status": "damaged", "reason": checked.reason,
                            "version": __version__})
        response.status_code = 503
        response.headers["Retry-After"] = "60"
        return response
    status = checked.status
    return jsonify({
        "status": "ok",
        "model": retriever.embedder.name,
        "index": {
            "documents": status["documents"],
            "chunks": status["chunks"],
            "generation": status["generation"],
            "changed_at": status["changed_at"],
            "created_at": status["created_at"],
        },
        "writes": bool(current_app.extensions["qa_api_keys"]),
        "version": __version__,
    })


@api.get("/sources")
def sources() -> Response:
    """The sources of the archive with their document counts, and its date range."""
    _reject_unknown_parameters(set())
    with app_retriever().engine.snapshot() as snapshot:
        found = snapshot.sources()
        first, last = snapshot.date_range()
        total, _ = snapshot.counts()
    return jsonify({
        "sources": [{"name": name, "documents": count} for name, count in found],
        "date_from": first,
        "date_to": last,
        "documents": total,
    })


@api.get("/documents")
def documents() -> Response:
    """A page of documents with their metadata, ordered by id."""
    _reject_unknown_parameters({"offset", "limit", "sort"})
    offset = _integer_parameter("offset", 0, minimum=0, maximum=10**9)
    limit = _integer_parameter("limit", DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE)
    sort = request.args.get("sort", "id")
    if sort not in ("id", "date"):
        raise ApiError(400, "invalid_parameter", "sort must be id or date")
    with app_retriever().engine.snapshot() as snapshot:
        total, _ = snapshot.counts()
        page = snapshot.documents(offset=offset, limit=limit, newest_first=sort == "date")
    return jsonify({
        "total": total,
        "offset": offset,
        "limit": limit,
        "documents": [document_summary(document) for document in page],
    })


@api.get("/documents/<doc_id>")
def document(doc_id: str) -> Response:
    """One document: metadata and the paragraphs of its clean text."""
    # Looked up in the store only: an id never becomes a file path.
    with app_retriever().engine.snapshot() as snapshot:
        found = snapshot.document(doc_id)
    return jsonify(document_detail(found))


@api.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 description of this API."""
    return jsonify(openapi_document(app_config()))


def _reject_unknown_parameters(accepted: set[str]) -> None:
    unknown = sorted(set(request.args) - accepted)
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown parameter {unknown[0]!r} "
                       f"(accepted: {', '.join(sorted(accepted))})")


def _integer_parameter(name: str, default: int, minimum: int, maximum: int) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    text = text.strip()
    well_formed = text.isascii() and text.isdigit() and len(text) <= len(str(maximum))
    if not well_formed or not minimum <= int(text) <= maximum:
        raise ApiError(400, "invalid_parameter",
                       f"{name} must be an integer from {minimum} to {maximum}")
    return int(text)
