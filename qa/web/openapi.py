"""The OpenAPI 3.1 document of the JSON API, built from the config and the ask fields."""

from __future__ import annotations

from typing import Any

from qa import __version__
from qa.config import MODES, Config
from qa.web.ask_request import ASK_FIELDS, FILTER_PARAMETERS, JSON_MIMETYPE
from qa.web.documents import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from qa.web.errors import ERROR_CODES
from qa.web.openapi_write import SECURITY_SCHEMES, write_paths, write_schemas

_NULLABLE_STRING = {"type": ["string", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON_MIMETYPE: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(properties) if required is None else required,
        "properties": properties,
    }


def schemas(config: Config) -> dict[str, Any]:
    """The component schemas: requests, answers, documents and the error shape."""
    retrieval = config.retrieval
    ask_request = _object(
        {f.name: f.schema(retrieval) | {"description": f.description} for f in ASK_FIELDS},
        required=[f.name for f in ASK_FIELDS if f.required],
    ) | {"additionalProperties": False}
    citation = _object({
        "doc_id": {"type": "string"},
        "title": _NULLABLE_STRING,
        "source": _NULLABLE_STRING,
        "date": _NULLABLE_STRING,
        "url": _NULLABLE_STRING,
        "section": _NULLABLE_STRING,
        "paragraph": {"type": "integer", "minimum": 1,
                      "description": "1-based paragraph number in the document (headings "
                                     "are not counted); the page /doc/{doc_id}#p{paragraph}. "
                                     "The same as paragraph_start."},
        "paragraph_start": {"type": "integer", "minimum": 1,
                            "description": "First paragraph the passage covers."},
        "paragraph_end": {"type": "integer", "minimum": 1,
                          "description": "Last paragraph the passage covers."},
        "char_start": {"type": "integer", "minimum": 0},
        "char_end": {"type": "integer", "minimum": 0},
    }) | {"description": "Where the passage is; char offsets index the document's clean text "
                         "(its blocks joined by newlines)."}
    passage = _object({
        "rank": {"type": "integer", "minimum": 1},
        "score": {"type": "number"},
        "text": {"type": "string"},
        "highlight": _ref("Highlight"),
        "scores": _object({
            "vector": {"type": "number", "description": "Cosine similarity to the question."},
            "keyword": {"type": "number",
                        "description": "BM25 score of the question's words (0: none matched)."},
        }) | {"description": "Each component's own score; `score` is the fused one in hybrid "
                             "mode and the chosen component's otherwise."},
        "citation": _ref("Citation"),
        "also_in": {"type": "array", "items": _ref("Citation"),
                    "description": "Other documents carrying the same text up to small "
                                   "edits (wire copies), best-ranked first; empty when none "
                                   "or when retrieval.collapse_duplicates is off."},
    })
    summary_properties = {
        "doc_id": {"type": "string"},
        "title": _NULLABLE_STRING,
        "date": _NULLABLE_STRING,
        "source": _NULLABLE_STRING,
        "url": _NULLABLE_STRING | {"description": "The original article (http or https only)."},
        "category": _NULLABLE_STRING,
        "tags": {"type": "array", "items": {"type": "string"}},
        "paragraphs": {"type": "integer", "minimum": 0},
    }
    block = _object({
        "kind": {"enum": ["heading", "paragraph"]},
        "number": {"type": ["integer", "null"], "minimum": 1,
                   "description": "Paragraph number; null for headings."},
        "text": {"type": "string"},
        "char_start": {"type": "integer", "minimum": 0},
        "char_end": {"type": "integer", "minimum": 0},
    })
    return {
        "AskRequest": ask_request,
        "Answer": _object({
            "question": {"type": "string", "description": "The question as asked, stripped."},
            "took_ms": {"type": "number", "minimum": 0},
            "mode": {"enum": list(MODES), "description": "How the passages were found."},
            "confident": {"type": "boolean",
                          "description": "false when even the best passage does not look like "
                                         "an answer (an off-topic question); the passages are "
                                         "still listed for inspection."},
            "filters": {"type": "object",
                        "description": "The filters applied (only those that filter)."},
            "sort": {"enum": ["relevance", "date"]},
            "documents_matched": {"type": ["integer", "null"], "minimum": 0,
                                  "description": "How many documents the filters kept (all "
                                                 "documents without filters)."},
            "passages": {"type": "array", "items": _ref("Passage")},
        }),
        "Passage": passage,
        "Highlight": _object({
            "start": {"type": "integer", "minimum": 0},
            "end": {"type": "integer", "minimum": 0},
        }) | {"description": "The answering sentence: text[start:end] of the passage."},
        "Citation": citation,
        "Health": _object({
            "status": {"enum": ["ok"]},
            "model": {"type": "string"},
            "index": _object({
                "documents": {"type": "integer", "minimum": 0},
                "chunks": {"type": "integer", "minimum": 0},
                "generation": {"type": "integer", "minimum": 0,
                               "description": "Moves by one with every committed change."},
                "changed_at": _NULLABLE_STRING | {"description": "Time of the last change."},
                "created_at": _NULLABLE_STRING,
            }),
            "writes": {"type": "boolean",
                       "description": "Whether an API key is configured (writes are on)."},
            "version": {"type": "string"},
        }),
        "Sources": _object({
            "sources": {"type": "array", "items": _object({
                "name": {"type": "string"},
                "documents": {"type": "integer", "minimum": 1},
            })},
            "date_from": _NULLABLE_STRING | {"description": "The earliest document date."},
            "date_to": _NULLABLE_STRING | {"description": "The latest document date."},
            "documents": {"type": "integer", "minimum": 0},
        }),
        "HealthDamaged": _object({
            "status": {"enum": ["damaged"]},
            "reason": {"type": "string"},
            "version": {"type": "string"},
        }),
        "DocumentSummary": _object(summary_properties),
        "DocumentList": _object({
            "total": {"type": "integer", "minimum": 0},
            "offset": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1},
            "documents": {"type": "array", "items": _ref("DocumentSummary")},
        }),
        "Block": block,
        "DocumentDetail": _object(
            summary_properties | {"blocks": {"type": "array", "items": _ref("Block")}}
        ),
        "Error": _object({
            "error": _object({
                "code": {"type": "string", "enum": sorted(ERROR_CODES),
                         "description": "; ".join(f"{k}: {v}" for k, v in ERROR_CODES.items())},
                "message": {"type": "string"},
            }, required=["code", "message"]),
        }),
    } | write_schemas()


def openapi_document(config: Config) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    retrieval = config.retrieval
    common = {
        "404": _error("No such endpoint."),
        "405": _error("Method not allowed."),
        "500": _error("Server error (details only in the server log)."),
        "503": _error("The index is damaged (index_damaged) or busy (index_busy); see "
                      "Retry-After."),
    }
    limited = {"429": _error("Too many questions from this address (server."
                             "rate_limit_per_minute); see Retry-After.")}
    bad_request = _error("Invalid question, top_k, field or parameter.")
    ask_parameters = [
        {
            "name": f.query_name,
            "in": "query",
            "required": f.required,
            "description": f"{f.description} (`{f.name}` in the POST body)",
            "schema": f.schema(retrieval),
        }
        for f in ASK_FIELDS if f.in_query
    ] + [
        {"name": name, "in": "query", "required": False,
         "description": f"Filter: {field}" + (" (repeatable)" if name in ("source", "doc",
                                                                            "category")
                                               else " (YYYY-MM-DD, inclusive)"),
         "schema": ({"type": "array", "items": {"type": "string", "minLength": 1}}
                    if name in ("source", "doc", "category")
                    else {"type": "string", "format": "date"}),
         "explode": True}
        for name, field in FILTER_PARAMETERS.items()
    ]
    answer = _json(_ref("Answer"), "The ranked passages, best first.")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "News QA",
            "version": __version__,
            "description": "Semantic retrieval over Chinese news: a question gets the passages "
                           "that answer it, the answering sentence marked, with citations. "
                           'Every error is {"error": {"code", "message"}}.',
        },
        "paths": {
            "/api/ask": {
                "post": {
                    "summary": "Answer a question",
                    "operationId": "askPost",
                    "requestBody": {
                        "required": True,
                        "content": {JSON_MIMETYPE: {"schema": _ref("AskRequest")}},
                    },
                    "responses": {
                        "200": answer,
                        "400": _error("Invalid question or top_k, unknown field, malformed "
                                      "JSON or a body that is not UTF-8."),
                        "413": _error(f"Body over {config.server.max_body_bytes} bytes."),
                        "415": _error("The body is not application/json."),
                    } | common | limited,
                },
                "get": {
                    "summary": "Answer a question given in the query string",
                    "operationId": "askGet",
                    "parameters": ask_parameters,
                    "responses": {"200": answer, "400": bad_request} | common | limited,
                },
            },
            "/api/health": {
                "get": {
                    "summary": "Service status",
                    "operationId": "health",
                    "responses": {"200": _json(_ref("Health"), "The service is up.")} | common
                    | {"503": _json(_ref("HealthDamaged"), "The index is damaged; the reason "
                                    "says what to run.")},
                },
            },
            "/api/sources": {
                "get": {
                    "summary": "The archive's sources and date range (for filter controls)",
                    "operationId": "sources",
                    "responses": {
                        "200": _json(_ref("Sources"), "Sources, most documents first."),
                        "400": bad_request,
                    } | common,
                },
            },
            "/api/documents": write_paths(config, common)["/api/documents"] | {
                "get": {
                    "summary": "List documents, one page at a time",
                    "operationId": "listDocuments",
                    "parameters": [
                        {"name": "offset", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 0, "maximum": 10**9,
                                    "default": 0}},
                        {"name": "limit", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
                                    "default": DEFAULT_PAGE_SIZE}},
                        {"name": "sort", "in": "query", "required": False,
                         "description": "id (default), or date: newest first, undated last",
                         "schema": {"enum": ["id", "date"], "default": "id"}},
                    ],
                    "responses": {
                        "200": _json(_ref("DocumentList"), "A page of documents."),
                        "400": bad_request,
                    } | common,
                },
            },
            "/api/documents/{doc_id}": write_paths(config, common)["/api/documents/{doc_id}"] | {
                "get": {
                    "summary": "One document with its paragraphs",
                    "operationId": "getDocument",
                    "parameters": [{"name": "doc_id", "in": "path", "required": True,
                                    "schema": {"type": "string"}}],
                    "responses": {
                        "200": _json(_ref("DocumentDetail"), "The document."),
                    } | common | {"404": _error("No document with that id.")},
                },
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (text format): requests by route and "
                               "status, latency histograms, asks in flight, index size, "
                               "generation and health",
                    "operationId": "metrics",
                    "responses": {"200": {"description": "The metrics.", "content": {
                        "text/plain": {"schema": {"type": "string"}}}}},
                },
            },
            "/api/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "responses": {
                        "200": _json({"type": "object"}, "The OpenAPI document."),
                    } | common,
                },
            },
        },
        "components": {"schemas": schemas(config), "securitySchemes": SECURITY_SCHEMES},
    }
