"""A bounded load test of `GET /api/ask` against a real `qa serve`: at each concurrency
(1, 4, 8, 16 by default) a fixed number of questions, each client on its own keep-alive
connection, within a time bound. Prints a table (requests, errors, p50/p95/p99 ms,
requests/s) and writes JSON; stops the server with SIGTERM.

    .venv/bin/python scripts/load.py --config config.yaml -n 48 --json load.json

The index must exist (`qa index`). Errors are non-200 answers and failed connections.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import FALLBACK_QUESTIONS, REPO, percentile, start_server  # noqa: E402


def run_level(url: str, clients: int, total: int, questions: list[str],
              deadline: float) -> dict:
    parts = urlsplit(url)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(total))

    def client() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        for number in counter:
            if time.monotonic() > deadline:
                break
            path = "/api/ask?q=" + quote(questions[number % len(questions)])
            started = time.perf_counter()
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors[0] += 1
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    done = len(latencies) + errors[0]
    return {
        "concurrency": clients, "requests": done, "errors": errors[0],
        "p50_ms": round(percentile(latencies, 0.50), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "requests_per_s": round(done / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("-n", "--requests", type=int, default=48,
                        help="Questions per concurrency level.")
    parser.add_argument("--levels", default="1,4,8,16")
    parser.add_argument("--time-limit", type=float, default=300.0,
                        help="Seconds for the whole run, start-up excluded.")
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    questions = list(FALLBACK_QUESTIONS)
    process, url = start_server(args.config, timeout=180)
    rows = []
    try:
        for question in questions:  # warm up
            run_level(url, 1, 1, [question], time.monotonic() + 60)
        deadline = time.monotonic() + args.time_limit
        for level in (int(x) for x in args.levels.split(",")):
            rows.append(run_level(url, level, args.requests, questions, deadline))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    print("| concurrency | requests | errors | p50 ms | p95 ms | p99 ms | requests/s |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['concurrency']} | {row['requests']} | {row['errors']} | {row['p50_ms']} "
              f"| {row['p95_ms']} | {row['p99_ms']} | {row['requests_per_s']} |")
    if args.json_out:
        args.json_out.write_text(json.dumps({"levels": rows}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
