"""The model's intra-op threads under `qa serve`: two servers, alternately loaded.

    .venv/bin/python scripts/bench_threads.py [--config config.yaml] [--threads 1 2]
        [--concurrency 4] [--seconds 8] [--rounds 3] [--json artifacts/bench_threads.json]

Starts one `qa serve` per `--threads` value on the same index (the config's, which must
exist), then sends `GET /api/ask` from `--concurrency` clients to each server in turn
for `--seconds`, `--rounds` times (the order reversed every round, so a busy machine
slows them alike). Prints requests/s, latency p50/p95 and errors, and writes JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import yaml

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = ["2021年宜宾白酒产业的营业收入是多少？", "景德镇陶瓷产业如何数字化？", "宜宾模式是什么",
             "跨境电商综试区什么时候获批", "消费品工业营业收入",
             "How much revenue did the Yibin liquor industry make?"]


def config_with_threads(source: Path, threads: int, folder: Path) -> Path:
    """A copy of the config with model.threads set and its paths made absolute."""
    raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    base = source.resolve().parent
    for key in ("corpus_dir", "index_dir"):
        raw[key] = str(base / raw.get(key, "corpus" if key == "corpus_dir"
                                      else "embeddings/index"))
    model = raw.setdefault("model", {})
    model["cache_dir"] = str(base / model.get("cache_dir", ".cache/models"))
    model["threads"] = threads
    target = folder / f"threads-{threads}.yaml"
    target.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return target


def wait_ready(port: int, process: subprocess.Popen) -> None:
    while process.poll() is None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/api/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server on port {port} stopped")


def burst(port: int, seconds: float, concurrency: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = [0]
    stop = time.time() + seconds

    def client(number: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.time() < stop:
            # A new question each time: nothing may be served from a cache.
            question = QUESTIONS[number % len(QUESTIONS)] + str(number)
            number += concurrency
            started = time.perf_counter()
            connection.request("GET", "/api/ask?q=" + quote(question))
            response = connection.getresponse()
            response.read()
            errors[0] += response.status != 200
            latencies.append((time.perf_counter() - started) * 1000)

    workers = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, errors[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-threads-") as folder:
        servers = {}
        for offset, threads in enumerate(args.threads):
            port = 18760 + offset
            config = config_with_threads(args.config, threads, Path(folder))
            servers[threads] = (subprocess.Popen(
                [sys.executable, "-m", "qa.cli", "serve", "--config", str(config),
                 "--port", str(port)], cwd=REPO,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port)
        try:
            for process, port in servers.values():
                wait_ready(port, process)
            results = {t: {"latencies": [], "errors": 0} for t in servers}
            for round_number in range(args.rounds):
                order = list(servers) if round_number % 2 == 0 else list(servers)[::-1]
                for threads in order:
                    latencies, errors = burst(servers[threads][1], args.seconds,
                                              args.concurrency)
                    results[threads]["latencies"] += latencies
                    results[threads]["errors"] += errors
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait()
    rows = []
    print("| threads | requests/s | p50 ms | p95 ms | errors |")
    print("|---|---|---|---|---|")
    for threads, result in results.items():
        latencies = sorted(result["latencies"])
        row = {"threads": threads,
               "requests_per_s": len(latencies) / (args.seconds * args.rounds),
               "p50_ms": statistics.median(latencies),
               "p95_ms": latencies[int(0.95 * (len(latencies) - 1))],
               "errors": result["errors"]}
        rows.append(row)
        print(f"| {threads} | {row['requests_per_s']:.1f} | {row['p50_ms']:.0f} "
              f"| {row['p95_ms']:.0f} | {row['errors']} |")
    load = os.getloadavg()
    print(f"concurrency {args.concurrency}, {os.cpu_count()} cores, load average "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"concurrency": args.concurrency, "load_average": load,
                                         "rows": rows}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
