"""Run the app under waitress, the production WSGI server, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from waitress import wasyncore
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

from qa.config import ServerConfig

logger = logging.getLogger(__name__)

Server = BaseWSGIServer | MultiSocketServer


def make_server(app: Any, host: str, port: int, threads: int,
                settings: ServerConfig | None = None) -> Server:
    """A bound, not yet running waitress server; port 0 picks a free port.

    Idle and slow clients cost waitress a socket in its event loop, never a worker
    thread (a request reaches a thread only once it has fully arrived), so a high
    connection limit with a short idle timeout keeps them from starving others.
    """
    if settings is None:
        qa_config = getattr(app, "config", {}).get("QA")
        settings = qa_config.server if qa_config is not None else ServerConfig()
    guard = getattr(app, "extensions", {}).get("qa_guard")
    if guard is not None:
        guard.allow_host(host)
    return create_server(
        app, host=host, port=port, threads=threads, ident="newsqa",
        connection_limit=settings.connection_limit,
        # Idle connections close after this many seconds; checked every few seconds.
        channel_timeout=settings.channel_timeout,
        cleanup_interval=max(1, min(10, settings.channel_timeout // 2)),
        # poll(), not select(): select() cannot watch descriptors above 1024.
        asyncore_use_poll=True,
        # Just above the app's own limits, so that the app answers in JSON (qa.web.guards)
        # and waitress refuses — before reading, let alone spooling — only what is
        # larger still; its answer to those is plain text.
        max_request_header_size=2 * settings.max_header_bytes,
        max_request_body_size=max(settings.max_body_bytes, settings.max_upload_bytes) + 1,
    )


def server_url(server: Server) -> str:
    """The http:// address the server listens on (the first, if it listens on several)."""
    if isinstance(server, MultiSocketServer):
        host, port = server.effective_listen[0]
    else:
        host, port = server.effective_host, server.effective_port
    if ":" in str(host):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _socket_map(server: Server) -> dict:
    return server.map if isinstance(server, MultiSocketServer) else server._map


def serve(server: Server, announce: Callable[[str], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then shut down cleanly. Call from the main thread."""

    def stop(signum: int, frame: FrameType | None) -> None:
        # Raised in the main thread inside waitress' loop, which ends on SystemExit.
        raise SystemExit(0)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    url = server_url(server)
    logger.info("serving on %s", url)
    if announce:
        announce(url)
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        # Let requests in progress finish (waitress waits up to 5 s), then free the socket.
        server.task_dispatcher.shutdown()
        wasyncore.close_all(_socket_map(server))
        logger.info("stopped serving on %s", url)


class ServerThread:
    """A server running in a background thread (tests and benchmarks); `stop()` ends it."""

    def __init__(self, server: BaseWSGIServer):
        self.server = server
        self.url = server_url(server)
        self._thread = threading.Thread(target=server.run, name="waitress", daemon=True)

    def start(self) -> ServerThread:
        """Start serving; returns self."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close the sockets from inside the server's loop, and wait for it to end."""
        server = self.server
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        self._thread.join(timeout)
        server.task_dispatcher.shutdown(timeout=timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"the server at {self.url} did not stop within {timeout} s")
