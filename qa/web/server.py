"""Run the app under cheroot, the production WSGI server, until SIGTERM or Ctrl-C.

Why cheroot (measured; README "Operating it"): it hands the body to the app as a stream,
so a body over a route's limit is refused by its Content-Length before a byte of it is
read, and every answer cheroot gives on its own (a malformed request line, a head over
the limit, a timeout) goes through one method, `simple_response`, which the request
class below renders in the API's JSON error shape.

Each open connection being read or answered holds one of `connection_limit` threads (a
thread that waits on a socket costs memory, not CPU); an idle keep-alive connection
waits in cheroot's selector without one. The app runs on `threads` threads of its own.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any, NoReturn

from cheroot import server as cheroot_server
from cheroot.wsgi import Server

from qa.config import ServerConfig
from qa.web.errors import HTTP_CODES

logger = logging.getLogger(__name__)

# Listen backlog: connections the kernel queues before they are accepted.
BACKLOG = 1024
# After refusing a request whose body (or head) was not read, the server discards at most
# this much of what the client goes on sending, for at most this long, before it closes:
# closing with unread data would reset the connection and the client could lose the answer.
DRAIN_BYTES = 8 * 1024 * 1024
DRAIN_SECONDS = 2.0
# A stop waits this much longer than cheroot's shutdown_timeout before it gives up on the
# threads (see stop_within).
STOP_MARGIN_SECONDS = 5.0
# With a listening socket shared by several workers: how long a worker waits after taking
# a new connection before it takes another (see _pause_after_accept).
ACCEPT_PAUSE = 0.005
REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable",
           505: "HTTP Version Not Supported"}


class JsonErrorRequest(cheroot_server.HTTPRequest):
    """cheroot's request, with its own error answers in the API's JSON shape."""

    max_header_bytes = 0  # set per server in make_server

    def simple_response(self, status: Any, msg: Any = "") -> None:
        number = int(str(status)[:3])
        message = msg.decode("latin-1") if isinstance(msg, bytes) else str(msg)
        if number == 414 or (number == 413 and "header" in message.lower()):
            # cheroot's cap on the head is ours (max_header_bytes): say it as the guard does.
            number = 431
            message = f"the request line and headers exceed {self.max_header_bytes} bytes"
        elif message == "Malformed Request-URI" and any(b > 0x7F for b in self.uri or b""):
            message = ("the URL holds raw non-ASCII bytes; percent-encode it as UTF-8 "
                       "(curl --get --data-urlencode 'q=...')")
        body, kind = error_body(self.path_or_none(), number, message or REASONS.get(number, ""))
        self.close_connection = True
        # The client may still be sending its head or body; a timed-out one is not.
        self.conn.drain_on_close = number != 408
        head = [f"{self.server.protocol} {number} {REASONS.get(number, 'Error')}",
                f"Content-Type: {kind}", f"Content-Length: {len(body)}", "Connection: close"]
        try:
            self.conn.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        except OSError:
            pass  # the client is gone: nothing to tell it

    def path_or_none(self) -> str | None:
        """The request path if the request line got that far, else None."""
        raw = getattr(self, "path", None) or getattr(self, "uri", None)
        return raw.decode("latin-1") if isinstance(raw, bytes) else None

    def send_headers(self) -> None:
        # An app answer with "Connection: close" (a refusal before the body was read) closes
        # the connection instead of cheroot reading the rest of the body to keep it alive.
        if any(k.lower() == b"connection" and v.lower() == b"close" for k, v in self.outheaders):
            self.close_connection = True
        # Likewise a chunked body the app did not read to its end: what is left of it must
        # not be taken for the next request.
        chunks_left = self.chunked_read and not getattr(self.rfile, "closed", True)
        if chunks_left:
            self.close_connection = True
        if self.close_connection and (chunks_left or getattr(self.rfile, "remaining", 0) > 0):
            self.conn.drain_on_close = True
        super().send_headers()


class JsonErrorConnection(cheroot_server.HTTPConnection):
    """cheroot's connection, closed gently after a refusal (see DRAIN_BYTES)."""

    RequestHandlerClass = JsonErrorRequest
    drain_on_close = False

    def close(self) -> None:
        if self.drain_on_close:
            self.drain_on_close = False
            drain(self.socket)
        super().close()


def drain(sock: socket.socket) -> None:
    """Send FIN, then discard (bounded) what the client still sends, so that it reads the
    answer before the close."""
    deadline = time.monotonic() + DRAIN_SECONDS
    left = DRAIN_BYTES
    try:
        sock.shutdown(socket.SHUT_WR)
        while left > 0 and (wait := deadline - time.monotonic()) > 0:
            sock.settimeout(wait)
            data = sock.recv(min(65536, left))
            if not data:
                break
            left -= len(data)
    except OSError:
        pass  # the client is gone or too slow: close now


def error_body(path: str | None, status: int, message: str) -> tuple[bytes, str]:
    """(body, content type): the JSON error on /api/* (or when the path is unknown), else text."""
    if path is None or path.startswith("/api"):
        code = HTTP_CODES.get(status, "bad_request" if status < 500 else "internal_error")
        body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False)
        return body.encode("utf-8"), "application/json"
    return (message + "\n").encode("utf-8"), "text/plain; charset=utf-8"


class AppThreads:
    """Runs the app on `threads` fixed threads; a server thread hands its request over and
    waits. Fixed, because the index keeps one SQLite connection (and its page cache) per
    thread: spread over hundreds of server threads, asks ran about 30% slower (measured
    with scripts/load.py)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], threads: int):
        self.app = app
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="app")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        return self._pool.submit(self.app, environ, start_response).result()

    def shutdown(self, wait: bool = True) -> None:
        """End the threads once the requests in progress are done (waits for them)."""
        self._pool.shutdown(wait=wait)


def make_server(app: Any, host: str, port: int, threads: int,
                settings: ServerConfig | None = None, sock: socket.socket | None = None,
                reuse_port: bool = False) -> Server:
    """A bound, not yet serving server; port 0 picks a free port. Raises OSError if the
    address cannot be used. With `sock` (a listening socket shared by several processes,
    qa.web.workers), the server accepts on it instead of binding `host`:`port`; with
    `reuse_port`, it binds with SO_REUSEPORT (each process its own listening socket)."""
    if settings is None:
        qa_config = getattr(app, "config", {}).get("QA")
        settings = qa_config.server if qa_config is not None else ServerConfig()
    guard = getattr(app, "extensions", {}).get("qa_guard")
    if guard is not None:
        guard.allow_host(host)
    connections = max(settings.connection_limit, threads + 1)
    address = sock.getsockname()[:2] if sock is not None else (host, port)
    server = Server(
        address, AppThreads(app, threads), numthreads=connections,
        server_name="newsqa", request_queue_size=BACKLOG,
        # Seconds a read from a client may wait (a stalled head or body, an idle connection).
        timeout=settings.channel_timeout, shutdown_timeout=5, reuse_port=reuse_port,
    )
    request_class = type("Request", (JsonErrorRequest,),
                         {"max_header_bytes": settings.max_header_bytes})
    server.ConnectionClass = type("Connection", (JsonErrorConnection,),
                                  {"RequestHandlerClass": request_class})
    # cheroot stops reading a head at this size and answers 431 (JSON, above); bodies are
    # limited per route by the app (qa.web.guards) before it reads them.
    server.max_request_header_size = settings.max_header_bytes
    server.max_request_body_size = 0
    server.keep_alive_conn_limit = connections
    server.error_log = _log_server_error  # type: ignore[method-assign]
    if sock is not None:
        server.bind = lambda *args: _adopt(server, sock)  # type: ignore[method-assign]
    try:
        server.prepare()
    except OSError as exc:
        raise (exc.__cause__ if isinstance(exc.__cause__, OSError) else exc) from None
    if sock is not None:
        # Every worker wakes for a new connection and one accepts it; the others must get
        # "nothing to accept" at once, not wait in accept() (cheroot's 1 s timeout) while
        # their own keep-alive connections have requests waiting.
        server.socket.setblocking(False)
        _pause_after_accept(server)
    return server


def _pause_after_accept(server: Server) -> None:
    """After taking a new connection, a worker waits ACCEPT_PAUSE before its next accept,
    so that the other workers get the next connections of a burst: otherwise whichever
    worker was running took most of them (8 keep-alive connections opened at once all
    landed on one of two workers; README, "Several workers on one port")."""
    manager = server._connections
    accept = manager._from_server_socket

    def accept_then_pause(server_socket: socket.socket) -> Any:
        connection = accept(server_socket)
        if connection is not None:
            time.sleep(ACCEPT_PAUSE)
        return connection

    manager._from_server_socket = accept_then_pause


def _adopt(server: Server, sock: socket.socket) -> socket.socket:
    """cheroot's `bind`, for a socket that is already bound and listening."""
    server.socket = sock
    server.bind_addr = sock.getsockname()[:2]
    return sock


def _log_server_error(msg: str = "", level: int = logging.INFO, traceback: bool = False
                      ) -> None:
    logger.log(level, "%s", msg, exc_info=traceback)


def server_url(server: Server) -> str:
    """The http:// address the server listens on."""
    host, port = server.bind_addr[:2]
    if ":" in str(host):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve(server: Server, announce: Callable[[str], None] | None = None,
          close: Callable[[], None] | None = None) -> NoReturn:
    """Serve until SIGTERM or SIGINT, stop (bounded, see `stop_within`), call `close`, and
    end the process (`leave_process`). Call from the main thread of `qa serve` only."""

    def stop(signum: int, frame: FrameType | None) -> None:
        # Raised in the main thread inside cheroot's loop, which ends on SystemExit.
        raise SystemExit(0)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    url = server_url(server)
    logger.info("serving on %s", url)
    if announce:
        announce(url)
    try:
        server.serve()
    except SystemExit:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stop_within(server, server.shutdown_timeout + STOP_MARGIN_SECONDS)
        if close is not None:
            close()
        logger.info("stopped serving on %s", url)
    leave_process(0)


def stop_within(server: Server, seconds: float) -> bool:
    """Stop accepting, let the requests in progress finish (cheroot waits up to its
    shutdown_timeout, then closes their connections), and wait at most `seconds` for
    that. cheroot then joins all `connection_limit` threads one by one, and each must get
    the GIL to end: on a loaded machine that took from 0.7 s to 15 s for 500 idle threads
    (0.05 s when quiet), so the wait is bounded; threads still ending are left to the
    process exit. Returns whether everything ended in time."""
    stopper = threading.Thread(target=server.stop, name="stop", daemon=True)
    stopper.start()
    stopper.join(seconds)
    if stopper.is_alive():
        logger.warning("the server's threads did not all end within %.0f s; leaving anyway",
                       seconds)
        server.wsgi_app.shutdown(wait=False)
        return False
    server.wsgi_app.shutdown()
    return True


def leave_process(code: int) -> NoReturn:
    """End the process now that serving stopped: run the exit handlers (logging, Milvus
    Lite's server release, ...) and skip the interpreter's teardown, which took 0.3 s on a
    quiet machine and 5-7 s on a loaded one (measured by timing `qa serve` from SIGTERM to
    exit), and which would also wait for any connection thread still ending."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


class ServerThread:
    """A server running in a background thread (tests and benchmarks); `stop()` ends it."""

    def __init__(self, server: Server):
        self.server = server
        self.url = server_url(server)
        self._thread = threading.Thread(target=server.serve, name="cheroot", daemon=True)

    def start(self) -> ServerThread:
        """Start serving; returns self."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let requests in progress finish, and wait for the loop to end."""
        self.server.stop()
        self._thread.join(timeout)
        self.server.wsgi_app.shutdown()
        if self._thread.is_alive():
            raise RuntimeError(f"the server at {self.url} did not stop within {timeout} s")
