"""scripts/bench_api.py: reading a process's memory, stopping its servers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_api.py"
spec = importlib.util.spec_from_file_location("bench_api", SCRIPT)
bench_api = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_api)

ROLLUP = """\
55a7f47f4000-7ffc47c9f000 ---p 00000000 00:00 0                          [rollup]
Rss:              812340 kB
Pss:              530114 kB
Pss_Anon:         420000 kB
Pss_File:         110114 kB
Shared_Clean:     290000 kB
Private_Dirty:    420100 kB
Locked:                0 kB
"""


def test_smaps_rollup_lines_become_kilobytes_by_name():
    sizes = bench_api.parse_smaps_rollup(ROLLUP)
    assert sizes == {"Rss": 812340, "Pss": 530114, "Pss_Anon": 420000, "Pss_File": 110114,
                     "Shared_Clean": 290000, "Private_Dirty": 420100, "Locked": 0}


def test_status_lines_without_a_size_are_skipped():
    sizes = bench_api.parse_smaps_rollup("Name:\tpython\nVmHWM:\t  2048 kB\nThreads:\t4\n")
    assert sizes == {"VmHWM": 2048}


def test_memory_of_this_process_is_read_from_proc():
    memory = bench_api.process_memory(os.getpid())
    assert 0 < memory["pss_mb"] <= memory["rss_mb"] <= memory["peak_rss_mb"]
    assert abs(memory["pss_anon_mb"] + memory["pss_file_mb"] - memory["pss_mb"]) < 1.0


def child(code: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"  # its signal handler is in place
    return process


def test_servers_are_stopped_with_sigterm_and_killed_if_they_ignore_it():
    polite = child("import time; print('ready', flush=True); time.sleep(60)")
    stubborn = child("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                     "print('ready', flush=True); time.sleep(60)")
    started = time.monotonic()
    bench_api.stop_servers([polite, stubborn], grace=1.0)
    assert time.monotonic() - started < 10
    assert polite.returncode == -15  # ended by SIGTERM
    assert stubborn.returncode == -9  # still running after the grace: killed
    polite.stdout.close()
    stubborn.stdout.close()


def test_index_files_are_sized_in_the_live_store_relative_to_the_config(tmp_path):
    store = tmp_path / "data" / "index" / "store-2"
    (store / "keywords.tantivy").mkdir(parents=True)
    (store / "keywords.tantivy" / "a.idx").write_bytes(b"x" * 2**20)
    (store / "keywords.tantivy" / "b.idx").write_bytes(b"x" * 2**19)
    (store / "vectors-7.faiss").write_bytes(b"x" * 2**21)
    (tmp_path / "data" / "index" / "store-1").mkdir()  # an old store: not counted
    (tmp_path / "data" / "index" / "CURRENT").write_text("store-2\n")
    config = tmp_path / "config.yaml"
    config.write_text("index_dir: data/index\n")
    assert bench_api.index_files(config) == {"keywords.tantivy": 1.5, "vectors-7.faiss": 2.0}
    config.write_text("index_dir: elsewhere\n")
    assert bench_api.index_files(config) == {}


def test_busy_cores_leave_out_idle_and_iowait():
    before = bench_api.cpu_ticks("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n")
    after = bench_api.cpu_ticks("cpu  250 0 100 850 100 0 0 0 0 0\n")
    assert before == (150, 1000)
    assert after == (350, 1300)
    # 200 busy ticks of 300 on 2 CPUs: 1.33 cores busy on average
    assert bench_api.busy_cores(before, after, 2) == 1.33
    assert bench_api.busy_cores(after, after, 2) == 0.0


def test_questions_are_read_from_json_lines_and_squad_files_in_order(tmp_path):
    lines = tmp_path / "q.jsonl"
    lines.write_text('{"question": "甲"}\n\n{"question": "乙"}\n', encoding="utf-8")
    squad = tmp_path / "s.json"
    squad.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [
        {"context": "c", "qas": [{"id": "1", "question": "丙"}, {"id": "2", "question": "丁"}]},
    ]}]}, ensure_ascii=False), encoding="utf-8")
    assert bench_api.read_questions([squad, lines, tmp_path / "missing.jsonl"]) == [
        "丙", "丁", "甲", "乙"]


def test_a_fresh_level_asks_each_question_once_and_stops_when_they_run_out():
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            asked.append(json.loads(body)["question"])
            payload = json.dumps({"took_ms": 1.0}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        questions = [f"q{i}" for i in range(10)]
        first = bench_api.run_level([server.server_address], questions, 3, 4, 10, 5, 0)
        second = bench_api.run_level([server.server_address], questions, 3, 100, 10, 5,
                                     first["sent"])
    finally:
        server.shutdown()
        server.server_close()
    assert (first["requests"], second["requests"]) == (4, 6)
    assert sorted(asked) == sorted(questions)
