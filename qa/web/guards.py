"""WSGI middleware that refuses a request before the app (or its body) is touched:
a Host header not on the allow-list, a head over the header limit, a body whose
Content-Length is over its route's limit, and a client over its question rate. Every
refusal has the API's JSON error shape; pages outside /api/ get the same status with a
short text. The server streams the body to the app (`qa.web.server`), so a refused body
is never read.

The client a rate limit counts is the peer address, or, when the peer is one of
`server.trusted_proxies`, the last address in X-Forwarded-For that is not a trusted
proxy; the header of any other peer is ignored.
"""

from __future__ import annotations

import ipaddress
import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from qa.config import ServerConfig

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
# Routes a question costs CPU on; the rate limit applies to them only.
RATE_LIMITED_PREFIXES = ("/api/ask",)
# Routes that take a document (JSON or a file upload): their limit is max_upload_bytes.
UPLOAD_PREFIX = "/api/documents"
UPLOAD_METHODS = ("POST", "PUT")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def allowed_hosts(server: ServerConfig, bound_host: str | None = None) -> frozenset[str]:
    """Host names the server answers to: the configured ones, or the loopback names plus
    the host it is bound to ("*" in the list accepts any)."""
    if server.allowed_hosts:
        return frozenset(h.lower() for h in server.allowed_hosts)
    names = set(LOOPBACK_NAMES)
    for host in (server.host, bound_host):
        if host and host not in ("0.0.0.0", "::", ""):
            names.add(host.lower())
    return frozenset(names)


def host_name(header: str) -> str:
    """The name part of a Host header: without the port, brackets kept for IPv6."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDR networks ("10.0.0.0/8", "::1"); raises ValueError on a bad one."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(environ: dict[str, Any], trusted: tuple[Network, ...]) -> str:
    """The address a request is counted under: the peer, unless the peer is a trusted proxy;
    then the nearest X-Forwarded-For hop that is not one (all trusted: the first hop)."""
    peer = environ.get("REMOTE_ADDR", "-")
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    if not trusted or not forwarded or not _in(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop[:64]
    return hops[0][:64] if hops else peer


class RateLimiter:
    """A token bucket per client address: `burst` at once, then `per_minute`."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate = per_minute / 60.0
        self.burst = float(max(1, burst))
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, client: str) -> float:
        """0 if the client may go ahead now (and charge it), else seconds to wait."""
        now = self.clock()
        with self._lock:
            if len(self._buckets) > 10_000:  # forget clients whose buckets are full again
                self._buckets = {c: (t, s) for c, (t, s) in self._buckets.items()
                                 if t + (self.burst - s) / self.rate > now}
            tokens, since = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - since) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate


class GuardMiddleware:
    """Wraps the Flask app; see the module docstring."""

    def __init__(self, app: WSGIApp, server: ServerConfig, bound_host: str | None = None):
        self.app = app
        self.hosts = allowed_hosts(server, bound_host)
        self.configured = bool(server.allowed_hosts)
        self.max_header_bytes = server.max_header_bytes
        self.max_body_bytes = server.max_body_bytes
        self.max_upload_bytes = server.max_upload_bytes
        self.trusted_proxies = parse_networks(server.trusted_proxies)
        self.limiter = (RateLimiter(server.rate_limit_per_minute, server.rate_limit_burst)
                        if server.rate_limit_per_minute else None)
        # Called with each refusal's status (the metrics count them).
        self.on_refusal: Callable[[dict[str, Any], int], None] | None = None

    def allow_host(self, host: str) -> None:
        """Also accept the host the server is bound to (`qa serve --host`)."""
        if not self.configured and host and host not in ("0.0.0.0", "::", ""):
            self.hosts = self.hosts | {host.lower()}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        refusal = self.refusal(environ)
        if refusal is None:
            return self.app(environ, start_response)
        status, code, message, headers = refusal
        if self.on_refusal:
            self.on_refusal(environ, status)
        return respond(environ, start_response, status, code, message, headers)

    def refusal(self, environ: dict[str, Any]
                ) -> tuple[int, str, str, list[tuple[str, str]]] | None:
        """(status, code, message, headers) if the request must be refused, else None."""
        # No Host header at all (HTTP/1.0 tools) cannot be a browser's rebinding attack.
        header = environ.get("HTTP_HOST")
        host = host_name(header) if header is not None else ""
        if header is not None and "*" not in self.hosts and host not in self.hosts:
            return (400, "host_not_allowed",
                    f"the Host header {host[:100]!r} is not one this server answers to "
                    "(server.allowed_hosts)", [])
        head = sum(len(k) + len(str(v)) + 4 for k, v in environ.items() if k.startswith("HTTP_"))
        head += len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", ""))
        if head > self.max_header_bytes:
            return (431, "headers_too_large",
                    f"the request line and headers exceed {self.max_header_bytes} bytes", [])
        path = environ.get("PATH_INFO", "")
        length = environ.get("CONTENT_LENGTH") or "0"
        limit = self.body_limit(environ.get("REQUEST_METHOD", "GET"), path)
        if length.isdigit() and int(length) > limit:
            return (413, "body_too_large",
                    f"the request body is too large (at most {limit} bytes here)", [])
        if self.limiter is not None and path.startswith(RATE_LIMITED_PREFIXES):
            wait = self.limiter.wait_seconds(client_address(environ, self.trusted_proxies))
            if wait > 0:
                seconds = max(1, math.ceil(wait))
                return (429, "rate_limited",
                        f"too many questions from this address; retry in {seconds} s",
                        [("Retry-After", str(seconds))])
        return None

    def body_limit(self, method: str, path: str) -> int:
        """Largest body the route takes: a document for the write routes, else a question."""
        if method in UPLOAD_METHODS and path.startswith(UPLOAD_PREFIX):
            return self.max_upload_bytes
        return self.max_body_bytes


REASONS = {400: "Bad Request", 413: "Content Too Large", 429: "Too Many Requests",
           431: "Request Header Fields Too Large"}


def respond(environ: dict[str, Any], start_response: StartResponse, status: int, code: str,
            message: str, headers: list[tuple[str, str]]) -> Iterable[bytes]:
    """The API's JSON error (or a text line outside /api/), without reading the body."""
    if environ.get("PATH_INFO", "").startswith("/api"):
        body = json.dumps({"error": {"code": code, "message": message}},
                          ensure_ascii=False).encode("utf-8")
        kind = "application/json"
    else:
        body = (message + "\n").encode("utf-8")
        kind = "text/plain; charset=utf-8"
    # The body was not read: the connection cannot carry another request.
    headers = [("Content-Type", kind), ("Content-Length", str(len(body))),
               ("Connection", "close"), *headers]
    start_response(f"{status} {REASONS.get(status, 'Error')}", headers)
    return [body]
