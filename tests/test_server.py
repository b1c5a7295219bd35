"""The real server: cheroot over real sockets, and `qa serve` as a process (start, ask, stop)."""

from __future__ import annotations

import http.client
import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from qa.cli import main
from qa.web import create_app
from qa.web.openapi import openapi_document
from qa.web.server import ServerThread, make_server, stop_within
from tests.conftest import model_cache
from tests.test_api import tiny_config, tiny_retriever, write_tiny_corpus

REPO = Path(__file__).resolve().parent.parent
WAIT_SECONDS = 30


def request(base: str, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, chunked: bool = False
            ) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request; returns (status, headers, body) for any status."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=WAIT_SECONDS)
    try:
        if chunked:
            connection.request(method, path, body=iter([body or b""]), headers=headers or {},
                               encode_chunked=True)
        else:
            connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def schema_validator(name: str) -> Draft202012Validator:
    document = openapi_document(tiny_config(Path("/")))
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                 "components": document["components"]})


ANSWER = schema_validator("Answer")
ERROR = schema_validator("Error")
JSON = {"Content-Type": "application/json"}


def ask(base: str, question: object, top_k: int | None = None) -> dict:
    """POST a question; asserts a 200 that follows the answer schema."""
    payload = {"question": question} | ({} if top_k is None else {"top_k": top_k})
    status, headers, body = request(base, "POST", "/api/ask",
                                    json.dumps(payload).encode(), JSON)
    assert status == 200, body
    answer = json.loads(body)
    ANSWER.validate(answer)
    return answer


def bad_requests(max_body_bytes: int) -> list[tuple[str, str, bytes | None, dict, int, bool]]:
    """(method, path, body, headers, expected status, chunked) for each way to get it wrong."""
    too_big = json.dumps({"question": "宜" * max_body_bytes}).encode()
    return [
        ("POST", "/api/ask", b'{"question": ""}', JSON, 400, False),
        ("POST", "/api/ask", b'{"question": "   "}', JSON, 400, False),
        ("POST", "/api/ask", b'{"question": 42}', JSON, 400, False),
        ("POST", "/api/ask", b'{"question": ["a"]}', JSON, 400, False),
        ("POST", "/api/ask", b'{"question": "a", "top_k": "5"}', JSON, 400, False),
        ("POST", "/api/ask", b'{"question": "a", "top_k": 0}', JSON, 400, False),
        ("POST", "/api/ask", b'{"question": "a", "top_k": 51}', JSON, 400, False),
        ("POST", "/api/ask", b'{"question": "a", "extra": 1}', JSON, 400, False),
        ("POST", "/api/ask", b'{}', JSON, 400, False),
        ("POST", "/api/ask", json.dumps({"question": "长" * 1001}).encode(), JSON, 400, False),
        ("POST", "/api/ask", b'{"question": "a"', JSON, 400, False),
        ("POST", "/api/ask", b"", JSON, 400, False),
        ("POST", "/api/ask", '{"question": "宜宾"}'.encode("gb18030"), JSON, 400, False),
        ("POST", "/api/ask", too_big, JSON, 413, False),
        ("POST", "/api/ask", too_big, JSON, 413, True),
        ("POST", "/api/ask", b"x" * (4 * 1024 * 1024), JSON, 413, False),
        ("POST", "/api/ask", b'{"question": "a"}', {"Content-Type": "text/plain"}, 415, False),
        ("POST", "/api/ask", b'{"question": "a"}', {}, 415, False),
        ("POST", "/api/ask", b"question=a",
         {"Content-Type": "application/x-www-form-urlencoded"}, 415, False),
        ("GET", "/api/ask", None, {}, 400, False),
        ("GET", "/api/ask?q=", None, {}, 400, False),
        ("GET", "/api/ask?q=a&k=x", None, {}, 400, False),
        ("GET", "/api/nope", None, {}, 404, False),
        ("GET", "/api/documents/nope", None, {}, 404, False),
        ("GET", "/api/documents/" + quote("../../etc/passwd", safe=""), None, {}, 404, False),
        ("DELETE", "/api/ask", None, {}, 405, False),
        ("PUT", "/api/health", b"{}", JSON, 405, False),
        ("GET", "/api/documents?limit=0", None, {}, 400, False),
    ]


def check_bad_requests(base: str, max_body_bytes: int) -> None:
    """Every bad request gets the JSON error shape with the right status."""
    for method, path, body, headers, expected, chunked in bad_requests(max_body_bytes):
        status, response_headers, raw = request(base, method, path, body, headers, chunked)
        where = f"{method} {path} {(body or b'')[:40]!r}"
        assert status == expected, f"{where}: {status} {raw[:200]!r}"
        assert response_headers["content-type"].startswith("application/json"), where
        ERROR.validate(json.loads(raw))


def check_chat_page(base: str) -> None:
    """`/` and everything it loads come from this server."""
    status, headers, raw = request(base, "GET", "/")
    assert status == 200
    html = raw.decode("utf-8")
    assert "新闻问答" in html
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/"), url
    assert "default-src 'self'" in headers["content-security-policy"]


# --- the server in a thread, with the fake embedder ------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    retriever = tiny_retriever(tmp_path_factory.mktemp("server"))
    server = ServerThread(make_server(create_app(retriever.config, retriever), "127.0.0.1", 0,
                                      retriever.config.server.threads)).start()
    yield server.url, retriever
    server.stop()
    retriever.engine.close()


def test_the_server_answers_over_a_real_socket(live):
    base, _ = live
    answer = ask(base, "2021年宜宾白酒产业的营业收入是多少？", top_k=3)
    assert "1600亿元" in answer["passages"][0]["text"]
    status, _, raw = request(base, "GET", "/api/ask?q=" + quote("景德镇") + "&k=2")
    assert status == 200 and len(json.loads(raw)["passages"]) == 2


def test_every_bad_request_gets_the_json_error_shape(live):
    base, retriever = live
    check_bad_requests(base, retriever.config.server.max_body_bytes)


def test_the_page_loads_nothing_from_outside(live):
    check_chat_page(live[0])


def test_concurrent_requests_are_all_answered(live):
    base, _ = live
    results: list[int] = []

    def worker():
        for _ in range(5):
            results.append(len(ask(base, "宜宾白酒")["passages"]))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS)
    assert len(results) == 30 and all(results)


def test_the_server_logs_each_request(live, caplog):
    base, _ = live
    with caplog.at_level(logging.INFO, logger="qa.web.request_log"):
        request(base, "GET", "/api/health")
        request(base, "DELETE", "/api/ask")
        deadline = time.monotonic() + 5
        while len(caplog.records) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    lines = [r.getMessage() for r in caplog.records if r.name == "qa.web.request_log"]
    assert any(line.startswith("GET /api/health 200 ") and line.endswith(" ms") for line in lines)
    assert any(line.startswith("DELETE /api/ask 405 ") for line in lines)


# --- `qa serve` as a process ------------------------------------------------------------------


def test_a_stop_is_bounded_even_if_a_request_never_ends():
    release = threading.Event()
    started = threading.Event()

    def stuck_app(environ, start_response):
        started.set()
        release.wait(WAIT_SECONDS)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"late"]

    server = make_server(stuck_app, "127.0.0.1", 0, threads=1)
    server.shutdown_timeout = 0.2
    runner = ServerThread(server).start()
    client = threading.Thread(target=lambda: request(runner.url, "GET", "/slow"), daemon=True)
    client.start()
    try:
        assert started.wait(WAIT_SECONDS)
        began = time.monotonic()
        assert stop_within(server, 1.0) is False
        assert time.monotonic() - began < 5
    finally:
        release.set()
        client.join(WAIT_SECONDS)


def test_a_stop_with_nothing_in_progress_ends_everything():
    def app(environ, start_response):
        start_response("204 No Content", [])
        return []

    server = make_server(app, "127.0.0.1", 0, threads=1)
    runner = ServerThread(server).start()
    assert request(runner.url, "GET", "/")[0] == 204
    assert stop_within(server, WAIT_SECONDS) is True
    runner._thread.join(WAIT_SECONDS)
    assert not runner._thread.is_alive()


def test_serve_before_index_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("model:\n  name: fake-embedder\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "no index" in result.output and "qa index" in result.output


FAKE_SERVE = """
import sys
import qa.cli
from tests.fakes import FakeEmbedder
qa.cli.load_embedder = lambda config: FakeEmbedder()
qa.cli.main(sys.argv[1:])
"""


class ServeProcess:
    """`qa serve` in a child process; `url` once it says where it listens."""

    def __init__(self, command: list[str], timeout: float):
        self.process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
        self.stderr: list[str] = []
        lines: queue.Queue[str | None] = queue.Queue()
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.process.stdout, lines.put),
                             daemon=True),
            threading.Thread(target=self._pump, args=(self.process.stderr, self.stderr.append),
                             daemon=True),
        ]
        for pump in self._pumps:
            pump.start()
        self.url = self._wait_for_url(lines, timeout)

    @staticmethod
    def _pump(stream, sink) -> None:
        for line in stream:
            sink(line)
        sink(None)

    def _wait_for_url(self, lines: queue.Queue, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            if line.startswith("serving on "):
                return line.split()[2]
        self.process.kill()
        self.process.wait(WAIT_SECONDS)
        self._close()
        raise AssertionError(f"qa serve did not start: {''.join(filter(None, self.stderr))}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send the signal and wait (bounded) for the exit code."""
        self.process.send_signal(sig)
        try:
            return self.process.wait(WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(WAIT_SECONDS)
            raise
        finally:
            self._close()

    def _close(self) -> None:
        for pump in self._pumps:
            pump.join(WAIT_SECONDS)
        self.process.stdout.close()
        self.process.stderr.close()

    @property
    def log(self) -> str:
        return "".join(line for line in self.stderr if line)


def fake_project(tmp_path: Path) -> Path:
    config = tiny_config(tmp_path)
    from qa.index.saved_index import build_index
    from tests.fakes import FakeEmbedder

    build_index(config, FakeEmbedder(), write_tiny_corpus(tmp_path / "corpus"), config.index_dir)
    path = tmp_path / "config.yaml"
    path.write_text("model:\n  name: fake-embedder\nserver:\n  threads: 2\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_qa_serve_answers_logs_and_stops_cleanly_on_a_signal(tmp_path, sig):
    config_path = fake_project(tmp_path)
    server = ServeProcess([sys.executable, "-c", FAKE_SERVE, "serve", "--config",
                           str(config_path), "--host", "127.0.0.1", "--port", "0"], WAIT_SECONDS)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        ask(server.url, "宜宾白酒产业的营业收入")
        request(server.url, "GET", "/api/nope")
    finally:
        code = server.stop(sig)
    assert code == 0, server.log
    assert "POST /api/ask 200 " in server.log and "GET /api/nope 404 " in server.log
    assert "stopped serving" in server.log
    assert "Traceback" not in server.log


def test_qa_serve_on_a_busy_port_is_one_clear_line(tmp_path):
    config_path = fake_project(tmp_path)
    first = ServeProcess([sys.executable, "-c", FAKE_SERVE, "serve", "--config",
                          str(config_path), "--port", "0"], WAIT_SECONDS)
    try:
        port = urlsplit(first.url).port
        second = subprocess.run(
            [sys.executable, "-c", FAKE_SERVE, "serve", "--config", str(config_path),
             "--port", str(port)],
            cwd=REPO, capture_output=True, text=True, timeout=WAIT_SECONDS,
        )
    finally:
        first.stop()
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr
    assert "Traceback" not in second.stderr


# --- the real model on the shipped corpus -----------------------------------------------------


@pytest.mark.integration
def test_qa_index_then_qa_serve_with_the_real_model(tmp_path):
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        f"corpus_dir: {REPO / 'corpus'}\nindex_dir: {tmp_path / 'index'}\n"
        f"model:\n  cache_dir: {model_cache()}\n",
        encoding="utf-8",
    )
    qa = [sys.executable, "-m", "qa.cli"]
    built = subprocess.run([*qa, "index", "--config", str(config_path)], cwd=REPO,
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    server = ServeProcess([*qa, "serve", "--config", str(config_path), "--port", "0"], 300)
    try:
        answer = ask(server.url, "2021年宜宾白酒产业的营业收入是多少？")
        best = answer["passages"][0]
        assert "1600亿元" in best["text"] and best["citation"]["source"] == "经济参考报"
        english = ask(server.url, "What was the revenue of the Yibin liquor industry in 2021?")
        assert english["passages"]
        check_bad_requests(server.url, 65536)
        check_chat_page(server.url)
    finally:
        code = server.stop()
    assert code == 0, server.log
