"""`qa serve --workers 2`: real processes on one real port (the fake model)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.test_server import (
    FAKE_SERVE,
    JSON,
    REPO,
    WAIT_SECONDS,
    ServeProcess,
    ask,
    fake_project,
    request,
)
from tests.test_write_api import ARTICLE, KEY, WRITE

STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")


def worker_pids(server: ServeProcess) -> dict[int, int]:
    """The live worker of each number, from the supervisor's log."""
    return {int(n): int(pid) for n, pid in STARTED.findall(server.log)}


def answered_by(server: ServeProcess) -> set[int]:
    """Pids of the workers that logged a request."""
    return {int(pid) for pid in re.findall(r"worker \d+ pid (\d+) qa\.web\.request_log",
                                           server.log)}


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def wait_for(condition, seconds: float = WAIT_SECONDS, step: float = 0.1) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    config_path = fake_project(tmp_path_factory.mktemp("workers"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QA_API_KEYS", KEY)
        server = ServeProcess([sys.executable, "-c", FAKE_SERVE, "serve", "--config",
                               str(config_path), "--port", "0", "--workers", "2"],
                              WAIT_SECONDS * 2)
    yield server
    if server.process.poll() is None:
        server.stop()


def test_two_workers_answer_on_one_port_and_both_serve(served):
    assert served.url.startswith("http://127.0.0.1:")
    # stderr is read by its own thread, which may not have caught up with stdout's URL.
    assert wait_for(lambda: served.log.count("ready (pid") == 2)
    assert len(worker_pids(served)) == 2
    # Each request on a new connection: the kernel hands it to whichever worker accepts.
    asked = 0
    while asked < 200 and (asked < 10 or len(answered_by(served)) < 2):
        assert ask(served.url, "宜宾白酒产业的营业收入")["passages"]
        asked += 1
    assert answered_by(served) == set(worker_pids(served).values())
    assert request(served.url, "GET", "/api/health")[0] == 200
    # /metrics, from whichever worker, counts the requests of both.
    for _ in range(4):
        status, _, body = request(served.url, "GET", "/metrics")
        assert status == 200
        counted = re.search(r'qa_http_requests_total\{method="POST",route="/api/ask",'
                            r'status="200"\} (\S+)', body.decode())
        assert counted and float(counted.group(1)) == asked, body.decode()[:2000]
        assert re.search(r"^qa_index_chunks \d", body.decode(), re.M)


def test_a_write_through_one_worker_is_seen_through_the_port(served):
    status, _, body = request(served.url, "POST", "/api/documents",
                              json.dumps(ARTICLE).encode(), JSON | WRITE)
    assert status == 201, body
    doc_id = json.loads(body)["doc_id"]
    # The other worker catches up by the store's generation (within about a second);
    # every new connection may land on either worker, so ask until 10 in a row agree.
    agreeing = 0

    def seen() -> bool:
        nonlocal agreeing
        passages = ask(served.url, "梧州数字经济产业园引进了多少企业", top_k=3)["passages"]
        agreeing = agreeing + 1 if passages[0]["citation"]["doc_id"] == doc_id else 0
        return agreeing >= 10

    assert wait_for(seen, step=0.05)
    assert request(served.url, "GET", f"/api/documents/{doc_id}")[0] == 200


def test_a_killed_worker_is_replaced(served):
    before = worker_pids(served)
    os.kill(before[2], signal.SIGKILL)
    assert wait_for(lambda: worker_pids(served)[2] != before[2])
    assert wait_for(lambda: served.log.count("ready (pid") == 3)
    assert "worker 2 (pid" in served.log and "was killed by signal 9 (SIGKILL)" in served.log
    assert worker_pids(served)[1] == before[1]
    for _ in range(10):
        assert ask(served.url, "景德镇")["passages"]


def test_sigterm_stops_every_worker(served):
    pids = list(worker_pids(served).values())
    began = time.monotonic()
    assert served.stop(signal.SIGTERM) == 0, served.log
    assert time.monotonic() - began < WAIT_SECONDS
    assert all(gone(pid) for pid in pids)
    assert served.log.count("stopped serving on") == 2
    assert "Traceback" not in served.log


def test_a_bad_config_fails_fast_with_one_clear_line(tmp_path):
    config_path = tmp_path / "config.yaml"
    config_path.write_text(f"index_dir: {tmp_path / 'nothing'}\nmodel:\n  name: fake-embedder\n",
                           encoding="utf-8")
    error = serve_fails(config_path)
    assert "no index" in error and "qa index" in error


def test_a_damaged_index_fails_fast_with_one_clear_line(tmp_path):
    config_path = fake_project(tmp_path)
    (store,) = (tmp_path / "embeddings" / "index").glob("store-*/chunks.sqlite")
    store.write_bytes(bytes(4096))
    error = serve_fails(config_path)
    assert "unreadable" in error and "qa check" in error


def serve_fails(config_path) -> str:
    """Runs `qa serve --workers 2`, which must fail at once; returns its one error line."""
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-c", FAKE_SERVE, "serve", "--config",
                             str(config_path), "--port", "0", "--workers", "2"],
                            cwd=REPO, capture_output=True, text=True, timeout=WAIT_SECONDS * 2)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "serving on" not in result.stdout
    assert time.monotonic() - began < WAIT_SECONDS
    return errors[0]


def test_workers_setting_is_checked(tmp_path):
    from qa.config import ConfigError, load_config

    path = tmp_path / "config.yaml"
    path.write_text("server:\n  workers: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        load_config(path)
    path.write_text("server:\n  workers: 3\n", encoding="utf-8")
    assert load_config(path).server.workers == 3


def test_the_supervisor_describes_how_a_worker_ended():
    from qa.web.workers import describe_exit

    # Wait statuses as os.waitpid gives them: a signal number, or the exit code << 8.
    assert describe_exit(signal.SIGKILL) == "was killed by signal 9 (SIGKILL)"
    assert describe_exit(3 << 8) == "exited with code 3"


def test_ctrl_c_stops_every_worker(tmp_path):
    config_path = fake_project(tmp_path)
    server = ServeProcess([sys.executable, "-c", FAKE_SERVE, "serve", "--config",
                           str(config_path), "--port", "0", "--workers", "2"], WAIT_SECONDS * 2)
    try:
        assert ask(server.url, "景德镇")["passages"]
        pids = list(worker_pids(server).values())
    finally:
        code = server.stop(signal.SIGINT)
    assert code == 0, server.log
    assert len(pids) == 2 and all(gone(pid) for pid in pids)
    assert server.log.count("stopped serving on") == 2
    assert "Traceback" not in server.log


def test_the_supervisor_loads_jiebas_dictionary_once_for_the_workers(served):
    # The fake model has no tokenizer to share; jieba's dictionary and the English bridge
    # are loaded before the fork.
    assert wait_for(lambda: re.search(r"loaded once for the workers to share: jieba's "
                                      r"dictionary, the English bridge \(\d", served.log))


def test_only_abandoned_metrics_folders_of_ours_are_removed(tmp_path):
    from qa.web.metrics_folders import make_metrics_folder, remove_stale_metrics_folders

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    dead = ended.pid  # a supervisor that was killed
    stale = tmp_path / f"qa-metrics-{dead}-abcd_123"
    stale.mkdir()
    for name in ("counter_4242.db", "gauge_livesum_4242.db", "histogram_4243.db"):
        (stale / name).write_bytes(b"\0" * 16)
    empty = tmp_path / f"qa-metrics-{dead}-empty000"
    empty.mkdir()
    odd = tmp_path / f"qa-metrics-{dead}-somefile"  # holds something else: left
    odd.mkdir()
    (odd / "notes.txt").write_text("mine")
    live = make_metrics_folder(tmp_path)  # this process's, running
    (live / "counter_1.db").write_bytes(b"")
    other_name = tmp_path / "qa-metrics-x1y2z3w4"  # no pid in the name (an older qa)
    other_name.mkdir()
    link = tmp_path / f"qa-metrics-{dead}-symlink0"
    link.symlink_to(odd)
    assert sorted(remove_stale_metrics_folders(tmp_path)) == sorted([stale, empty])
    assert not stale.exists() and not empty.exists()
    assert (odd / "notes.txt").exists() and (live / "counter_1.db").exists()
    assert other_name.is_dir() and link.is_symlink()


def test_the_next_supervisor_removes_a_killed_ones_metrics_folder(tmp_path, monkeypatch):
    config_path = fake_project(tmp_path)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))
    command = [sys.executable, "-c", FAKE_SERVE, "serve", "--config", str(config_path),
               "--port", "0", "--workers", "2"]
    first = ServeProcess(command, WAIT_SECONDS * 2)
    assert ask(first.url, "景德镇")["passages"]
    pids = list(worker_pids(first).values())
    (left,) = temporary.glob("qa-metrics-*")
    assert any(left.glob("*.db"))
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL  # it cannot clean up
    assert wait_for(lambda: all(gone(pid) for pid in pids))  # the workers follow it
    assert left.is_dir()
    second = ServeProcess(command, WAIT_SECONDS * 2)
    try:
        assert ask(second.url, "景德镇")["passages"]
        assert not left.exists()
        assert wait_for(lambda: f"removed {left}, left by a supervisor that was killed"
                        in second.log)
        (current,) = temporary.glob("qa-metrics-*")
    finally:
        assert second.stop(signal.SIGTERM) == 0, second.log
    assert not current.exists()


@pytest.mark.integration
def test_workers_answer_as_one_process_does_with_the_tokenizer_loaded_before_the_fork(
        tmp_path):
    from tests.conftest import model_cache

    config_path = tmp_path / "config.yaml"
    config_path.write_text(f"corpus_dir: {REPO / 'corpus'}\nindex_dir: {tmp_path / 'index'}\n"
                           f"model:\n  cache_dir: {model_cache()}\n", encoding="utf-8")
    qa = [sys.executable, "-m", "qa.cli"]
    built = subprocess.run([*qa, "index", "--config", str(config_path)], cwd=REPO,
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    questions = ["2021年宜宾白酒产业的营业收入是多少？", "景德镇陶瓷产业如何数字化？",
                 "What was the revenue of the Yibin liquor industry in 2021?"]
    alone = []
    for question in questions:  # one process, loading its own tokenizer
        done = subprocess.run([*qa, "ask", question, "--json", "--config", str(config_path)],
                              cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        alone.append(json.loads(done.stdout) | {"took_ms": None})
    assert "1600亿元" in alone[0]["passages"][0]["text"]
    server = ServeProcess([*qa, "serve", "--config", str(config_path), "--port", "0",
                           "--workers", "2"], 300)
    try:
        assert wait_for(lambda: "loaded once for the workers to share: the model's "
                        "tokenizer, jieba's dictionary, the English bridge" in server.log)
        asked = 0
        while asked < 60 and (asked < 6 or len(answered_by(server)) < 2):
            i = asked % len(questions)
            assert ask(server.url, questions[i]) | {"took_ms": None} == alone[i]
            asked += 1
        assert answered_by(server) == set(worker_pids(server).values())
    finally:
        code = server.stop()
    assert code == 0, server.log
