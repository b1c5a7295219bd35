"""A live archive: a running server sees every change, from its own write API or from
`qa add` / `qa remove` / `qa index` in another process, without failing a request."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from qa.web import create_app
from qa.web.server import ServerThread, make_server
from tests.test_api import tiny_retriever
from tests.test_server import FAKE_SERVE, REPO, ServeProcess, fake_project, request

KEY = "live-test-key"
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


def found(base: str, question: str, k: int = 5) -> list[dict]:
    status, _, body = request(base, "GET", f"/api/ask?q={quote(question)}&k={k}")
    assert status == 200, body
    return json.loads(body)["passages"]


def wait_until(condition, limit: float) -> float:
    """Seconds until `condition()` held; fails after `limit` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if condition():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError(f"not within {limit} s")


def qa(config_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`qa` in another process, with the fake embedder."""
    return subprocess.run([sys.executable, "-c", FAKE_SERVE, *args, "--config", str(config_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def test_qa_serve_sees_cli_changes_from_another_process_within_a_second(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_API_KEYS", KEY)
    config_path = fake_project(tmp_path)
    article = tmp_path / "elsewhere" / "wuzhou.txt"
    article.parent.mkdir()
    article.write_text("梧州数字经济\n\n梧州市数字经济产业园今年引进了四十二家云计算企业。",
                       encoding="utf-8")
    server = ServeProcess([sys.executable, "-c", FAKE_SERVE, "serve", "--config",
                           str(config_path), "--port", "0"], 30)
    try:
        before = json.loads(request(server.url, "GET", "/api/health")[2])["index"]
        added = qa(config_path, "add", str(article))
        assert added.returncode == 0, added.stderr
        seen = wait_until(lambda: any(p["citation"]["doc_id"] == "wuzhou" for p in
                                      found(server.url, "梧州云计算企业")), 1.0)
        after = json.loads(request(server.url, "GET", "/api/health")[2])["index"]
        assert after["generation"] > before["generation"]
        assert after["documents"] == before["documents"] + 1

        removed = qa(config_path, "remove", "wuzhou")
        assert removed.returncode == 0, removed.stderr
        wait_until(lambda: all(p["citation"]["doc_id"] != "wuzhou" for p in
                               found(server.url, "梧州云计算企业")), 1.0)

        # The server's own write API, with the key; visible to the next question at once.
        body = json.dumps({"doc_id": "api-doc", "title": "陶瓷博览会",
                           "text": "本届陶瓷博览会吸引了来自四十个国家的展商。"}).encode()
        status, _, reply = request(server.url, "POST", "/api/documents", body, AUTH)
        assert status == 201, reply
        assert found(server.url, "陶瓷博览会展商")[0]["citation"]["doc_id"] == "api-doc"
        assert qa(config_path, "check").returncode == 0
    finally:
        code = server.stop()
    assert code == 0 and KEY not in server.log, server.log
    assert seen < 1.0


def test_questions_during_100_adds_and_removes_never_fail_or_mix_versions(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_API_KEYS", KEY)
    retriever = tiny_retriever(tmp_path)
    app = create_app(retriever.config, retriever)
    server = ServerThread(make_server(app, "127.0.0.1", 0, 4)).start()
    errors: list[str] = []
    answers = 0
    stop = threading.Event()

    def ask_in_a_loop() -> None:
        nonlocal answers
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline and answers < 5000:
            status, _, body = request(server.url, "GET",
                                      f"/api/ask?q={quote('实时更新测试文章的版本')}&k=20")
            if status != 200:
                errors.append(f"{status}: {body[:200]!r}")
                continue
            versions: dict[str, set[str]] = {}
            for passage in json.loads(body)["passages"]:
                doc_id = passage["citation"]["doc_id"]
                if doc_id.startswith("live-"):
                    versions.setdefault(doc_id, set()).add(passage["text"].split("第")[-1][:2])
            mixed = {d: v for d, v in versions.items() if len(v) > 1}
            if mixed:
                errors.append(f"mixed versions in one answer: {mixed}")
            answers += 1

    def article(i: int, version: int) -> bytes:
        paragraph = f"实时更新测试文章{i}的正文，讲述城市数字经济的发展情况，这是第{version}版"
        return json.dumps({"doc_id": f"live-{i}", "title": f"实时更新测试{i}",
                           "text": f"{paragraph}。\n\n{paragraph}，第二段也写明版本第{version}版"
                                   }).encode()

    reader = threading.Thread(target=ask_in_a_loop)
    reader.start()
    try:
        for i in range(100):
            status, _, body = request(server.url, "POST", "/api/documents", article(i, 1), AUTH)
            assert status == 201, body
            if i % 3 == 0:
                status, _, body = request(server.url, "PUT", f"/api/documents/live-{i}",
                                          article(i, 2), AUTH)
                assert status == 200, body
        for i in range(100):
            status, _, body = request(server.url, "DELETE", f"/api/documents/live-{i}",
                                      headers=AUTH)
            assert status == 200, body
    finally:
        stop.set()
        reader.join(60)
        server.stop()
        retriever.engine.close()
    assert errors == []
    assert answers > 20


@pytest.mark.parametrize("rounds", [3])
def test_a_rebuild_goes_live_while_the_server_keeps_answering(tmp_path, monkeypatch, rounds):
    config_path = fake_project(tmp_path)
    server = ServeProcess([sys.executable, "-c", FAKE_SERVE, "serve", "--config",
                           str(config_path), "--port", "0"], 30)
    try:
        for _ in range(rounds):
            rebuilt = qa(config_path, "index", "--rebuild")
            assert rebuilt.returncode == 0, rebuilt.stderr
            assert found(server.url, "宜宾白酒产业的营业收入")[0]["citation"]["doc_id"] == "yibin"
        stores = [p.name for p in (tmp_path / "embeddings/index").iterdir()
                  if p.name.startswith("store-")]
        assert len(stores) == 1
    finally:
        code = server.stop()
    assert code == 0 and "Traceback" not in server.log, server.log
