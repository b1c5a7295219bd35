"""Throughput and latency of `POST /api/ask` against a real `qa serve`, at several
concurrency levels.

Starts `qa serve` on a free loopback port with the given config (its index must exist:
run `qa index` first), waits for it to listen and sends a few warm-up questions. Then,
for each concurrency level, that many clients (threads, each with its own keep-alive
connection) send questions in turn until together they have sent `-n` requests or
`--seconds` have passed. Latency is the client's wall time, question embedding and
JSON included. The server's CPU seconds (from /proc) are read around each level, so
CPU ms per request is the server's own work. Prints a table and writes JSON; stops the
server with SIGTERM. Only 127.0.0.1.

    .venv/bin/python scripts/bench_api.py [--config config.yaml] [--concurrency 1 4 8] \
        [-n 400] [--seconds 30] [--questions benchmarks/shipped_dev_questions.jsonl] \
        [--json artifacts/bench_api.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
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
    """`qa serve --port 0` in a child process run from `checkout`, and its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "serve", "--config", str(config),
         "--host", "127.0.0.1", "--port", "0"],
        cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
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


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ask(connection: http.client.HTTPConnection, question: str, top_k: int
        ) -> tuple[int, bytes]:
    body = json.dumps({"question": question, "top_k": top_k}).encode()
    connection.request("POST", "/api/ask", body=body,
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


def run_level(host: str, port: int, questions: list[str], clients: int, requests: int,
              seconds: float, top_k: int) -> dict:
    """`clients` threads asking until `requests` are sent or `seconds` have passed."""
    lock = threading.Lock()
    latencies: list[float] = []
    took: list[float] = []
    errors: list[str] = []
    sent = [0]
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=60)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if sent[0] >= requests:
                        return
                    index = sent[0]
                    sent[0] += 1
                question = questions[(index + number) % len(questions)]
                started = time.perf_counter()
                try:
                    status, payload = ask(connection, question, top_k)
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        errors.append(type(exc).__name__)
                    connection.close()
                    connection = http.client.HTTPConnection(host, port, timeout=60)
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if status == 200:
                        latencies.append(elapsed)
                        took.append(json.loads(payload)["took_ms"])
                    else:
                        errors.append(str(status))
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if not latencies:
        return {"concurrency": clients, "requests": 0, "errors": len(errors)}
    return {
        "concurrency": clients, "requests": len(latencies), "errors": len(errors),
        "error_kinds": sorted(set(errors)), "seconds": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "took_ms_p50": round(percentile(took, 0.50), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("-n", "--requests", type=int, default=400,
                        help="Requests per concurrency level (at most).")
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="Time limit per concurrency level.")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--checkout", type=Path, default=REPO,
                        help="Serve this checkout's code (e.g. main, for a before figure).")
    parser.add_argument("--questions", type=Path,
                        default=REPO / "benchmarks" / "shipped_dev_questions.jsonl")
    parser.add_argument("--json", dest="json_out", type=Path,
                        default=REPO / "artifacts" / "bench_api.json")
    args = parser.parse_args()

    questions = FALLBACK_QUESTIONS
    if args.questions.is_file():
        lines = args.questions.read_text(encoding="utf-8").splitlines()
        questions = [json.loads(line)["question"] for line in lines if line.strip()]

    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; load average before {os.getloadavg()}")
    process, url = start_server(args.config.resolve(), timeout=300,
                                 checkout=args.checkout.resolve())
    host, port = url.removeprefix("http://").rsplit(":", 1)
    levels = []
    try:
        warm = http.client.HTTPConnection(host, int(port), timeout=60)
        for question in questions[:WARM_UP]:
            ask(warm, question, args.top_k)
        warm.close()
        for clients in args.concurrency:
            cpu_before = server_cpu_seconds(process.pid)
            level = run_level(host, int(port), questions, clients, args.requests,
                              args.seconds, args.top_k)
            cpu = server_cpu_seconds(process.pid) - cpu_before
            if level["requests"]:
                level["server_cpu_ms_per_request"] = round(
                    1000 * cpu / (level["requests"] + level["errors"]), 1)
            levels.append(level)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    load_after = os.getloadavg()
    print(f"{len(questions)} questions, top_k={args.top_k}, server {url} running "
          f"{args.checkout.resolve()}; "
          f"load average after {load_after}\n")
    print("| concurrency | requests | requests/s | p50 ms | p95 ms | p99 ms | errors "
          "| server took_ms p50 | server CPU ms/request |")
    print("|---|---|---|---|---|---|---|---|---|")
    for level in levels:
        if not level["requests"]:
            print(f"| {level['concurrency']} | 0 | — | — | — | — | {level['errors']} | — | — |")
            continue
        print(f"| {level['concurrency']} | {level['requests']} | {level['requests_per_s']} "
              f"| {level['p50_ms']} | {level['p95_ms']} | {level['p99_ms']} "
              f"| {level['errors']} | {level['took_ms_p50']} "
              f"| {level['server_cpu_ms_per_request']} |")
    report = {
        "command": sys.argv, "checkout": str(args.checkout.resolve()), "warm_up": WARM_UP,
        "top_k": args.top_k,
        "questions": len(questions), "levels": levels,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform(), "load_after": load_after},
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nwrote {args.json_out}")
    return 0 if all(level["errors"] == 0 for level in levels) else 1


if __name__ == "__main__":
    sys.exit(main())
