"""Latency of `POST /api/ask` against a real `qa serve`, one request at a time.

Starts `qa serve` on a free loopback port with the given config (its index must exist:
run `qa index` first), waits for it to listen, sends a few warm-up questions, then N
sequential questions over one keep-alive connection, within a time bound. Prints a
table and writes JSON; stops the server with SIGTERM.

    .venv/bin/python scripts/bench_api.py [--config config.yaml] [-n 200] \
        [--questions benchmarks/shipped_dev_questions.jsonl] [--json artifacts/bench_api.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FALLBACK_QUESTIONS = [
    "2021年宜宾白酒产业的营业收入是多少？",
    "景德镇陶瓷产业如何数字化？",
    "What did Wuzhou do for its digital economy?",
]
WARM_UP = 5


def start_server(config: Path, timeout: float, checkout: Path = REPO
                 ) -> tuple[subprocess.Popen, str]:
    """`qa serve --port 0` of `checkout`'s code in a child process, and the URL it announces."""
    process = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "serve", "--config", str(config), "--port", "0"],
        cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    found: list[str] = []

    def read() -> None:
        for line in process.stdout:
            if line.startswith("serving on ") and not found:
                found.append(line.split()[2])

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if not found:
        process.kill()
        process.wait(10)
        raise SystemExit("qa serve did not start (is the index built? run `qa index`)")
    return process, found[0]


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("-n", "--requests", type=int, default=200)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--questions", type=Path,
                        default=REPO / "benchmarks" / "shipped_dev_questions.jsonl")
    parser.add_argument("--time-limit", type=float, default=600.0,
                        help="Stop sending after this many seconds.")
    parser.add_argument("--json", dest="json_out", type=Path,
                        default=REPO / "artifacts" / "bench_api.json")
    args = parser.parse_args()

    questions = FALLBACK_QUESTIONS
    if args.questions.is_file():
        lines = args.questions.read_text(encoding="utf-8").splitlines()
        questions = [json.loads(line)["question"] for line in lines if line.strip()]

    process, url = start_server(args.config.resolve(), timeout=300)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    wall: list[float] = []
    server: list[float] = []
    errors = 0
    try:
        deadline = time.monotonic() + args.time_limit
        for i in range(WARM_UP + args.requests):
            if time.monotonic() > deadline:
                break
            body = json.dumps({"question": questions[i % len(questions)], "top_k": args.top_k})
            started = time.perf_counter()
            connection.request("POST", "/api/ask", body=body.encode(),
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if i < WARM_UP:
                continue
            if response.status != 200:
                errors += 1
                continue
            wall.append(elapsed)
            server.append(json.loads(payload)["took_ms"])
    finally:
        connection.close()
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    if not wall:
        raise SystemExit("no successful request")
    rows = [
        ("client wall ms", wall),
        ("server took_ms", server),
    ]
    print(f"{len(wall)} sequential POST /api/ask (top_k={args.top_k}, {errors} errors) on {url}")
    print(f"{'':16}{'median':>9}{'p95':>9}{'p99':>9}{'mean':>9}{'min':>9}{'max':>9}")
    results = {}
    for name, values in rows:
        stats = {
            "median": statistics.median(values),
            "p95": percentile(values, 0.95),
            "p99": percentile(values, 0.99),
            "mean": statistics.fmean(values),
            "min": min(values),
            "max": max(values),
        }
        results[name.replace(" ", "_")] = {k: round(v, 2) for k, v in stats.items()}
        print(f"{name:16}" + "".join(f"{v:9.1f}" for v in stats.values()))
    report = {
        "requests": len(wall),
        "errors": errors,
        "warm_up": WARM_UP,
        "top_k": args.top_k,
        "questions": len(questions),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        **results,
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {args.json_out}")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
