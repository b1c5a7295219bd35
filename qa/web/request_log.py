"""WSGI middleware that logs one line per request: method, path, status, request id and
milliseconds. The id is the client's `X-Request-ID` if it is a sane token, else a new
one; it is echoed in the response's `X-Request-ID`, so a client's report finds the line."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wsgi import ClosingIterator

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RequestLogMiddleware:
    """Wraps a WSGI app; the line is logged when the response is finished (closed)."""

    def __init__(self, app: WSGIApp):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        started = time.perf_counter()
        status = ["-"]
        request_id = environ.get("HTTP_X_REQUEST_ID", "")
        if not _REQUEST_ID.fullmatch(request_id):
            request_id = secrets.token_hex(8)
        environ["qa.request_id"] = request_id

        def recording_start_response(code: str, headers: list, exc_info: Any = None) -> Any:
            status[0] = code.split(" ", 1)[0]
            headers = [*headers, ("X-Request-ID", request_id)]
            return start_response(code, headers, exc_info)

        def log() -> None:
            # The path only: query strings carry the questions people ask.
            logger.info(
                "%s %s %s id=%s %.1f ms",
                environ.get("REQUEST_METHOD", "-"),
                environ.get("PATH_INFO", "") or "/",
                status[0],
                request_id,
                (time.perf_counter() - started) * 1000,
            )

        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            status[0] = "500"
            log()
            raise
        return ClosingIterator(body, [log])
