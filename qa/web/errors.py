"""One error shape for the API: every failure on `/api/*` becomes `{"error": {code, message}}`.

Pages (everything outside `/api/`) get a small HTML error page instead. Either way the
client never sees a traceback; the log has it.
"""

from __future__ import annotations

import logging
import sqlite3

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from qa.errors import (
    DocumentNotFoundError,
    IndexDamagedError,
    IndexLockedError,
    InvalidQuestionError,
)

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"

# The code each HTTP status gets when werkzeug raises it (unknown route, wrong method, ...)
# or when the server answers on its own (qa.web.server: a timeout, a head too large, ...).
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
    503: "server_busy",
    505: "http_version_not_supported",
}

# Every error code the API answers with, for the OpenAPI document.
ERROR_CODES = {
    "invalid_question": "The question or top_k cannot be used (empty, too long, wrong type).",
    "invalid_parameter": "A query parameter is malformed (offset, limit, k).",
    "unknown_field": "The request names a field or parameter the endpoint does not accept.",
    "missing_field": "A required field or parameter is absent.",
    "malformed_json": "The body is not one JSON object.",
    "invalid_encoding": "The body is not UTF-8.",
    "body_too_large": "The body exceeds the configured limit.",
    "unsupported_media_type": "The body is not sent as application/json.",
    "document_not_found": "No document has that id.",
    "not_found": "No such endpoint.",
    "method_not_allowed": "The endpoint does not accept this method.",
    "bad_request": "The request is malformed.",
    "internal_error": "The server failed; the log has the details.",
    "writes_disabled": "No API key is configured, so write routes are off.",
    "missing_key": "The route needs an `Authorization: Bearer <key>` header.",
    "invalid_key": "The API key is not valid.",
    "invalid_document": "The document cannot be stored (a missing title or text, a bad "
                        "date or id).",
    "unreadable_file": "The uploaded file is of no supported format or holds no text.",
    "index_busy": "Another writer holds the index (a rebuild, say); retry later.",
    "index_damaged": "The index files are damaged; the message says what to run.",
    "host_not_allowed": "The Host header is not on the server's allow-list.",
    "headers_too_large": "The request line and headers exceed the configured limit.",
    "rate_limited": "Too many questions from this address; retry after Retry-After seconds.",
    # Answered by the HTTP server itself (qa.web.server), before the app sees the request.
    "request_timeout": "The request head or body stopped arriving (server.channel_timeout).",
    "not_implemented": "A Transfer-Encoding other than chunked.",
    "http_version_not_supported": "An HTTP version other than 1.0 or 1.1.",
    "server_busy": "The server cannot take the connection now; retry later.",
}


class ApiError(Exception):
    """An error the API reports to the client with a status, a code and a message."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str) -> Response:
    """The JSON error body with its status."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Map every exception to the API's error shape (or an HTML page outside the API)."""

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        response = _respond(exc.status, exc.code, exc.message)
        response.headers.update(exc.headers)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="newsqa"'
        return response

    @app.errorhandler(IndexLockedError)
    def index_busy(exc: IndexLockedError) -> Response:
        response = _respond(503, "index_busy", str(exc))
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(IndexDamagedError)
    @app.errorhandler(sqlite3.DatabaseError)
    def index_damaged(exc: Exception) -> Response:
        # A store damaged under the running server: say so, not "internal error".
        logger.error("the index is damaged: %s", exc)
        message = str(exc) if isinstance(exc, IndexDamagedError) else (
            f"the index is unreadable ({exc}); run `qa check` to see what is wrong")
        response = _respond(503, "index_damaged", message)
        response.headers["Retry-After"] = "60"
        return response

    @app.errorhandler(InvalidQuestionError)
    def invalid_question(exc: InvalidQuestionError) -> Response:
        return _respond(400, "invalid_question", str(exc))

    @app.errorhandler(DocumentNotFoundError)
    def document_not_found(exc: DocumentNotFoundError) -> Response:
        return _respond(404, "document_not_found", str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = HTTP_CODES.get(status, "bad_request" if status < 500 else "internal_error")
        response = _respond(status, code, _http_message(exc))
        # 405 must say which methods are allowed.
        for name, value in exc.get_headers():
            if name.lower() == "allow":
                response.headers["Allow"] = value
        return response

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return _respond(500, "internal_error", "internal server error; see the server log")


def _respond(status: int, code: str, message: str) -> Response:
    if request.path.startswith(API_PREFIX) or request.path == API_PREFIX.rstrip("/"):
        return error_response(status, code, message)
    html = render_template("error.html", status=status, message=_page_message(status))
    return Response(html, status=status, mimetype="text/html")


def _http_message(exc: HTTPException) -> str:
    messages = {
        404: f"no such endpoint: {request.path}",
        405: f"{request.method} is not allowed on {request.path}",
        413: "the request body is too large",
        415: "send the body as application/json",
    }
    return messages.get(exc.code or 500, exc.description or exc.name)


def _page_message(status: int) -> str:
    if status == 404:
        return "找不到这个页面或这篇文章。"
    if status >= 500:
        return "服务器出错了，请稍后再试。"
    return "请求有误。"
