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

logger = logging.getLogger(__name__)

Server = BaseWSGIServer | MultiSocketServer


def make_server(app: Any, host: str, port: int, threads: int) -> Server:
    """A bound, not yet running waitress server; port 0 picks a free port."""
    # waitress' own body limit stays at its default (1 GB, spooled to disk) so that an
    # oversized body reaches the app and gets the API's JSON 413, not waitress' text one.
    return create_server(app, host=host, port=port, threads=threads, ident="newsqa")


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
