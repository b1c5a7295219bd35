"""The write routes' part of the OpenAPI document (POST/PUT/DELETE /api/documents)."""

from __future__ import annotations

from typing import Any

from qa.config import Config

_NULLABLE_STRING = {"type": ["string", "null"]}
_ERROR = {"$ref": "#/components/schemas/Error"}
_JSON = "application/json"


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def write_schemas() -> dict[str, Any]:
    """NewDocument (the JSON body) and WriteResult (what a write did)."""
    outcome = {
        "type": "object",
        "required": ["doc_id", "status", "chunks"],
        "properties": {
            "doc_id": {"type": "string"},
            "status": {"enum": ["added", "replaced", "unchanged"]},
            "chunks": {"type": "integer", "minimum": 0},
        },
    }
    return {
        "NewDocument": {
            "type": "object",
            "required": ["title", "text"],
            "additionalProperties": False,
            "properties": {
                "doc_id": {"type": "string", "pattern": r"^[A-Za-z0-9\u3400-\u9fff]"
                                                        r"[\w.\-\u3400-\u9fff]{0,127}$",
                           "description": "Optional; without it the id comes from the URL "
                                          "(or from the title and text), so sending the "
                                          "same article again is a no-op."},
                "title": {"type": "string", "minLength": 1},
                "text": {"type": "string", "minLength": 1,
                         "description": "The article; paragraphs separated by blank lines."},
                "date": _NULLABLE_STRING | {"description": "YYYY-MM-DD"},
                "source": _NULLABLE_STRING,
                "url": _NULLABLE_STRING,
                "category": _NULLABLE_STRING,
                "tags": {"type": "array", "items": {"type": "string"}},
            },
        },
        "WriteOutcome": outcome,
        "WriteResult": {
            "type": "object",
            "required": ["doc_id", "status", "chunks", "documents", "generation"],
            "properties": outcome["properties"] | {
                "documents": {"type": "array", "items": {"$ref": "#/components/schemas/"
                                                                 "WriteOutcome"},
                              "description": "Every document of the request (an upload of "
                                             "an export may hold several)."},
                "generation": {"type": "integer", "minimum": 0,
                               "description": "The index generation after the write."},
            },
        },
        "Removed": {
            "type": "object",
            "required": ["doc_id", "status", "generation"],
            "properties": {"doc_id": {"type": "string"}, "status": {"enum": ["removed"]},
                           "generation": {"type": "integer", "minimum": 0}},
        },
    }


def write_paths(config: Config, common: dict[str, Any]) -> dict[str, Any]:
    """POST /api/documents and PUT/DELETE /api/documents/{doc_id}."""
    body = {
        "required": True,
        "content": {
            _JSON: {"schema": {"$ref": "#/components/schemas/NewDocument"}},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary",
                                        "description": "Any format the loader reads."}},
            }},
        },
    }
    result = {"$ref": "#/components/schemas/WriteResult"}
    refusals = {
        "400": _json(_ERROR, "A missing title or text, a bad date or id, an unknown field, "
                             "or a file of no supported format."),
        "401": _json(_ERROR, "No key, or a wrong one."),
        "403": _json(_ERROR, "No API key is configured on the server: writes are off."),
        "413": _json(_ERROR, f"Body over {config.server.max_upload_bytes} bytes."),
        "415": _json(_ERROR, "Neither application/json nor multipart/form-data."),
        "503": _json(_ERROR, "Another writer holds the index (a rebuild); retry later."),
    }
    security = [{"apiKey": []}]
    doc_id = [{"name": "doc_id", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        "/api/documents": {"post": {
            "summary": "Add a document (JSON) or the documents of an uploaded file",
            "operationId": "addDocument",
            "security": security,
            "requestBody": body,
            "responses": {"201": _json(result, "Stored (at least one document is new)."),
                          "200": _json(result, "Replaced or unchanged.")} | refusals | common,
        }},
        "/api/documents/{doc_id}": {
            "put": {
                "summary": "Replace a document (or create it)",
                "operationId": "replaceDocument",
                "security": security,
                "parameters": doc_id,
                "requestBody": body,
                "responses": {"201": _json(result, "Created."),
                              "200": _json(result, "Replaced or unchanged.")}
                | refusals | common,
            },
            "delete": {
                "summary": "Remove a document",
                "operationId": "removeDocument",
                "security": security,
                "parameters": doc_id,
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Removed"}, "Removed."),
                    "404": _json(_ERROR, "No document with that id."),
                } | {k: v for k, v in refusals.items() if k in ("401", "403", "503")} | common,
            },
        },
    }


SECURITY_SCHEMES = {"apiKey": {"type": "http", "scheme": "bearer",
                               "description": "A key from QA_API_KEYS or the key file."}}
