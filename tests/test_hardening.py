"""The server under abuse: idle connections, oversized bodies and heads, foreign Host
headers, question floods; /metrics; a damaged index answers 503, never 500 or "ok"."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from qa.index.layout import IndexFolder
from qa.question_terms import keep_rarest
from qa.web import create_app
from qa.web.guards import RateLimiter, host_name
from qa.web.server import ServerThread, make_server
from tests.test_api import tiny_retriever
from tests.test_server import request

IDLE_CONNECTIONS = 200


@pytest.fixture(scope="module")
def retriever(tmp_path_factory):
    retriever = tiny_retriever(tmp_path_factory.mktemp("hardening"))
    yield retriever
    retriever.engine.close()


@pytest.fixture(scope="module")
def live(retriever):
    server = ServerThread(make_server(create_app(retriever.config, retriever), "127.0.0.1", 0,
                                      retriever.config.server.threads)).start()
    yield server.url
    server.stop()


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_idle_connections_do_not_starve_a_normal_client(live):
    idle = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            idle.append(connect(live))
        # Half of them also start a request and stall inside its headers (slowloris).
        for sock in idle[::2]:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        started = time.monotonic()
        status, _, _ = request(live, "GET", "/api/health")
        assert status == 200
        assert time.monotonic() - started < 5
    finally:
        for sock in idle:
            sock.close()


def test_an_oversized_body_is_refused_without_being_read(live):
    sock = connect(live)
    try:
        # Announce 300 MB, send none of it: the answer must come at once.
        sock.sendall(b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 300000000\r\n\r\n")
        started = time.monotonic()
        head = sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 413"), head
        assert time.monotonic() - started < 5
    finally:
        sock.close()


def test_a_body_over_the_ask_limit_is_a_json_413(live):
    status, headers, raw = request(live, "POST", "/api/ask", body=b"{" + b" " * 70000 + b"}",
                                   headers={"Content-Type": "application/json"})
    assert status == 413 and headers["content-type"] == "application/json"
    assert b"body_too_large" in raw


@pytest.fixture
def client(retriever):
    return create_app(retriever.config, retriever).test_client()


def test_a_foreign_host_header_is_refused(client):
    response = client.get("/api/health", headers={"Host": "evil.example:8000"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "host_not_allowed"
    assert client.get("/api/health", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/api/health", headers={"Host": "[::1]:8000"}).status_code == 200


def test_allowed_hosts_come_from_the_config(tmp_path):
    retriever = tiny_retriever(tmp_path, server={"allowed_hosts": ["news.example.org"]})
    try:
        client = create_app(retriever.config, retriever).test_client()
        assert client.get("/api/health", headers={"Host": "news.example.org"}).status_code == 200
        assert client.get("/api/health", headers={"Host": "localhost"}).status_code == 400
    finally:
        retriever.engine.close()


def test_host_names_lose_their_port():
    assert host_name("LocalHost:8000") == "localhost"
    assert host_name("[::1]:8000") == "[::1]"
    assert host_name("::1") == "::1"


def test_a_head_over_the_limit_is_a_json_431(client):
    response = client.get("/api/health", headers={"X-Big": "a" * 20000})
    assert response.status_code == 431
    assert response.get_json()["error"]["code"] == "headers_too_large"


def test_the_rate_limit_answers_429_with_retry_after(tmp_path):
    retriever = tiny_retriever(tmp_path, server={"rate_limit_per_minute": 6,
                                                 "rate_limit_burst": 2})
    try:
        client = create_app(retriever.config, retriever).test_client()
        statuses = [client.get("/api/ask?q=宜宾").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        refused = client.get("/api/ask?q=宜宾")
        assert refused.get_json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 10
        # Other routes are not limited.
        assert client.get("/api/health").status_code == 200
    finally:
        retriever.engine.close()


def test_the_rate_limiter_refills_at_its_rate():
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    assert limiter.wait_seconds("a") == 0 and limiter.wait_seconds("a") == 0
    assert limiter.wait_seconds("a") == pytest.approx(1.0)
    assert limiter.wait_seconds("b") == 0  # per client
    now[0] = 1.0
    assert limiter.wait_seconds("a") == 0


def test_a_long_question_searches_only_its_rarest_words():
    tokens = ["a", "b", "c", "a", "d"]
    idf = {"a": 0.1, "b": 3.0, "c": 2.0, "d": 0.5}
    kept, weights = keep_rarest(tokens, idf, 2)
    assert kept == ["b", "c"] and weights == {"b": 3.0, "c": 2.0}
    assert keep_rarest(tokens, idf, 4) == (tokens, idf)


def test_metrics_count_requests_and_show_the_index(client):
    # Counted when the response is closed, as the server does once it is sent.
    client.get("/api/ask?q=宜宾").close()
    client.get("/api/documents/nope").close()
    text = client.get("/metrics").get_data(as_text=True)
    assert 'qa_http_requests_total{method="GET",route="/api/ask",status="200"} 1.0' in text
    assert 'route="/api/documents/<doc_id>",status="404"' in text
    assert "qa_http_request_duration_seconds_bucket" in text
    assert "qa_asks_in_flight 0.0" in text
    assert "qa_index_documents 3.0" in text and "qa_index_healthy 1.0" in text
    for stage in ("embed", "vector_search", "keyword_search", "fusion", "highlight"):
        assert f'qa_ask_stage_duration_seconds_count{{stage="{stage}"}} 1.0' in text, stage


def test_a_store_damaged_while_serving_is_a_503_not_ok(tmp_path):
    retriever = tiny_retriever(tmp_path)
    try:
        client = create_app(retriever.config, retriever).test_client()
        assert client.get("/api/health").status_code == 200
        store = IndexFolder(retriever.config.index_dir).require_store() / "chunks.sqlite"
        retriever.engine.close()
        for extra in ("-wal", "-shm"):
            Path(f"{store}{extra}").unlink(missing_ok=True)
        store.write_bytes(b"\0" * store.stat().st_size)
        time.sleep(2.1)  # the health check keeps its verdict for 2 s
        health = client.get("/api/health")
        assert health.status_code == 503
        assert health.get_json()["status"] == "damaged"
        assert "qa check" in health.get_json()["reason"]
        answer = client.get("/api/ask?q=宜宾")
        assert answer.status_code == 503
        assert answer.get_json()["error"]["code"] == "index_damaged"
        assert "qa_index_healthy 0.0" in client.get("/metrics").get_data(as_text=True)
    finally:
        retriever.engine.close()


def test_each_response_carries_the_request_id_of_its_log_line(client, caplog):
    caplog.set_level("INFO", logger="qa.web.request_log")
    given = client.get("/api/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    given.close()
    made = client.get("/api/health", headers={"X-Request-ID": "bad id\u2028"})
    assert len(made.headers["X-Request-ID"]) == 16
    made.close()
    assert any("id=abc-123 " in r.getMessage() for r in caplog.records)
