"""WSGI middleware that logs one line per request: method, path, status and milliseconds."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wsgi import ClosingIterator

logger = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RequestLogMiddleware:
    """Wraps a WSGI app; the line is logged when the response is finished (closed)."""

    def __init__(self, app: WSGIApp):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        started = time.perf_counter()
        status = ["-"]

        def recording_start_response(code: str, headers: list, exc_info: Any = None) -> Any:
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, exc_info)

        def log() -> None:
            # The path only: query strings carry the questions people ask.
            logger.info(
                "%s %s %s %.1f ms",
                environ.get("REQUEST_METHOD", "-"),
                environ.get("PATH_INFO", "") or "/",
                status[0],
                (time.perf_counter() - started) * 1000,
            )

        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            status[0] = "500"
            log()
            raise
        return ClosingIterator(body, [log])
