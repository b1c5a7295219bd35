"""What the server answers on its own, over raw sockets: a raw non-ASCII URL, heads far over
the limit, bodies over a route's limit (announced and not sent, or chunked and growing) —
each in the API's JSON error shape, and without reading the body. And the rate limit
behind a trusted reverse proxy."""

from __future__ import annotations

import json
import socket
import time

import pytest

from qa.config import load_config
from qa.errors import ConfigError
from qa.web import create_app
from qa.web.guards import client_address, parse_networks
from qa.web.server import ServerThread, make_server
from tests.test_api import tiny_retriever

MAX_UPLOAD = 1024 * 1024
MAX_HEADER = 16384
ANSWER_SECONDS = 5


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    retriever = tiny_retriever(tmp_path_factory.mktemp("limits"),
                               server={"max_upload_bytes": MAX_UPLOAD})
    server = ServerThread(make_server(create_app(retriever.config, retriever), "127.0.0.1", 0,
                                      retriever.config.server.threads)).start()
    host, port = server.url.removeprefix("http://").split(":")
    yield host, int(port)
    server.stop()
    retriever.engine.close()


def exchange(address: tuple[str, int], data: bytes) -> tuple[bytes, float]:
    """Send raw bytes, read until the server closes; (answer, seconds it took)."""
    with socket.create_connection(address, timeout=ANSWER_SECONDS * 2) as sock:
        sock.sendall(data)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> tuple[bytes, float]:
    started = time.monotonic()
    answer = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        answer += chunk
    return answer, time.monotonic() - started


def json_error(answer: bytes, status: int, code: str) -> dict:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), answer[:300]
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert headers["content-type"] == "application/json", headers
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"], error
    return error


def test_a_raw_utf8_url_is_a_json_400(live):
    answer, _ = exchange(live, "GET /api/ask?q=今天天气 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Connection: close\r\n\r\n".encode())
    error = json_error(answer, 400, "bad_request")
    assert "percent-encode" in error["message"]


def test_a_malformed_request_line_is_a_json_400(live):
    answer, _ = exchange(live, b"NONSENSE\r\n\r\n")
    json_error(answer, 400, "bad_request")


@pytest.mark.parametrize("times", [2, 10, 100])
def test_a_head_far_over_the_limit_is_a_json_431(live, times):
    head = (b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
            + b"a" * (MAX_HEADER * times) + b"\r\n\r\n")
    with socket.create_connection(live, timeout=ANSWER_SECONDS * 2) as sock:
        try:
            sock.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the head was sent in full: the answer is still there
        answer, _ = read_answer(sock)
    json_error(answer, 431, "headers_too_large")


def announce(path: str, length: int, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


@pytest.mark.parametrize("path,length", [
    ("/api/documents", MAX_UPLOAD + 1),
    ("/api/documents", 2**30),
    ("/api/ask", 65536 + 1),
    ("/api/ask", MAX_UPLOAD - 1),  # under the upload limit, over the question limit
    ("/api/ask", 2**30),
])
def test_a_body_over_the_route_limit_is_refused_before_it_is_sent(live, path, length):
    # The body is announced and never sent: only an answer from its Content-Length can come.
    answer, seconds = exchange(live, announce(path, length))
    json_error(answer, 413, "body_too_large")
    assert seconds < ANSWER_SECONDS


def test_a_refusal_closes_the_connection_instead_of_reading_the_body(live):
    with socket.create_connection(live, timeout=ANSWER_SECONDS * 2) as sock:
        sock.sendall(announce("/api/ask", 65536 + 1) + b"x" * 1000)
        answer, seconds = read_answer(sock)  # ends only once the server closes
    json_error(answer, 413, "body_too_large")
    assert b"connection: close" in answer.lower() and seconds < ANSWER_SECONDS


def test_a_chunked_body_growing_past_the_limit_is_refused_before_its_end(live):
    chunk = b"x" * 16384
    with socket.create_connection(live, timeout=ANSWER_SECONDS * 2) as sock:
        sock.sendall(b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(65536 // len(chunk) + 2):  # past the 64 KiB question limit
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        # No final chunk: the server must answer without waiting for the end of the body.
        answer, seconds = read_answer(sock)
    json_error(answer, 413, "body_too_large")
    assert seconds < ANSWER_SECONDS


def test_a_chunked_body_the_app_leaves_unread_is_not_taken_for_a_request(live):
    # Refused for its media type before a byte of the body is read: one answer, then close.
    answer, seconds = exchange(live, b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                     b"Content-Type: text/plain\r\nTransfer-Encoding: chunked"
                                     b"\r\n\r\n5\r\nhello\r\n")
    json_error(answer, 415, "unsupported_media_type")
    assert answer.count(b"HTTP/1.1 ") == 1 and seconds < ANSWER_SECONDS


def test_an_upload_under_its_limit_still_reaches_the_app(live):
    # A document route with a body between the two limits is read (and then needs a key).
    body = json.dumps({"title": "t", "text": "宜" * 40000}).encode()
    answer, _ = exchange(live, announce("/api/documents", len(body), "Connection: close\r\n")
                         + body)
    json_error(answer, 403, "writes_disabled")


# --- the rate limit behind a reverse proxy ----------------------------------------------------

PROXY = parse_networks(["10.0.0.0/8", "::1"])


def test_the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy():
    forwarded = {"HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    assert client_address({"REMOTE_ADDR": "198.51.100.1"} | forwarded, PROXY) == "198.51.100.1"
    assert client_address({"REMOTE_ADDR": "10.1.2.3"} | forwarded, PROXY) == "203.0.113.7"
    assert client_address({"REMOTE_ADDR": "10.1.2.3"} | forwarded, ()) == "10.1.2.3"
    # A client cannot pick its own address by prepending to the header: the nearest hop
    # that is not a trusted proxy counts.
    chain = {"REMOTE_ADDR": "::1", "HTTP_X_FORWARDED_FOR": "1.1.1.1, 203.0.113.7, 10.0.0.9"}
    assert client_address(chain, PROXY) == "203.0.113.7"
    assert client_address({"REMOTE_ADDR": "10.1.2.3"}, PROXY) == "10.1.2.3"


def test_clients_behind_a_trusted_proxy_have_their_own_rate(tmp_path):
    retriever = tiny_retriever(tmp_path, server={
        "rate_limit_per_minute": 6, "rate_limit_burst": 1, "trusted_proxies": ["10.0.0.0/8"]})
    try:
        client = create_app(retriever.config, retriever).test_client()

        def ask(peer: str, forwarded: str) -> int:
            return client.get("/api/ask?q=宜宾", headers={"X-Forwarded-For": forwarded},
                              environ_base={"REMOTE_ADDR": peer}).status_code

        assert ask("10.0.0.2", "203.0.113.1") == 200
        assert ask("10.0.0.2", "203.0.113.2") == 200  # another client, same proxy
        assert ask("10.0.0.2", "203.0.113.1") == 429
        # An untrusted peer's header is ignored: it is counted under its own address.
        assert ask("198.51.100.9", "203.0.113.3") == 200
        assert ask("198.51.100.9", "203.0.113.4") == 429
    finally:
        retriever.engine.close()


def test_a_bad_trusted_proxy_is_one_config_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("server:\n  trusted_proxies: [10.0.0.0/8, proxy.local]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="trusted_proxies: 'proxy.local'"):
        load_config(path)
