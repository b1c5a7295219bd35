"""What the shared metrics of `qa serve --workers` cost against one process's own.

For each mode, in a fresh process (prometheus_client chooses how values are kept when a
metric is made): "own" (one process, `qa serve`) and "shared" (prometheus_client's
multiprocess files, what each worker of `qa serve --workers` uses). Times what the app
records per answered question (the request counter, the latency histogram, the
in-flight gauge up and down, five stage histograms) over `--requests` questions, and
then a `/metrics` render (with `--processes` processes' files in the shared folder).
Prints microseconds and writes JSON.

    .venv/bin/python scripts/measure_metrics_cost.py [--requests 20000] [--rounds 3] \
        [--json artifacts/metrics_cost.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from script_setup import REPO  # noqa: E402 - this checkout's qa first on sys.path

STAGES = ("embed", "vector_search", "keyword_search", "fusion", "highlight")


def run_mode(mode: str, requests: int, processes: int) -> dict:
    """In this process: make the metrics in `mode`, time the updates and a render."""
    from qa.web.health import IndexHealth
    from qa.web.metrics import Metrics, share_between_processes

    folder = tempfile.mkdtemp(prefix="qa-metrics-cost-")
    if mode == "shared":
        share_between_processes(folder)
        for _ in range(processes - 1):  # the other workers' files
            pid = os.fork()
            if pid == 0:
                share_between_processes(folder)
                other = Metrics(lambda: IndexHealth(True, "", {"chunks": 1}))
                record(other, 200)
                os._exit(0)
            os.waitpid(pid, 0)
    metrics = Metrics(lambda: IndexHealth(True, "", {"documents": 1, "chunks": 1,
                                                     "generation": 1}))
    record(metrics, 100)  # warm up
    began = time.perf_counter()
    record(metrics, requests)
    per_request = (time.perf_counter() - began) / requests
    began = time.perf_counter()
    for _ in range(20):
        body = metrics.render().get_data()
    render = (time.perf_counter() - began) / 20
    shutil.rmtree(folder, ignore_errors=True)
    return {"mode": mode, "us_per_request": round(per_request * 1e6, 2),
            "render_ms": round(render * 1000, 2), "render_bytes": len(body)}


def record(metrics, count: int) -> None:
    for number in range(count):
        metrics.asks_in_flight.inc()
        for stage in STAGES:
            metrics.observe_stage(stage, 0.001 * (number % 7))
        metrics.asks_in_flight.dec()
        metrics.requests.labels("/api/ask", "POST", "200").inc()
        metrics.latency.labels("/api/ask").observe(0.03)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--mode", choices=("own", "shared"), help=argparse.SUPPRESS)
    parser.add_argument("--json", dest="json_out", type=Path,
                        default=REPO / "artifacts" / "metrics_cost.json")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.requests, args.processes)))
        return 0
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()}\n")
    print("| round | mode | µs per question recorded | /metrics render ms | bytes |")
    print("|---|---|---|---|---|")
    results = []
    for number in range(1, args.rounds + 1):
        for mode in ("own", "shared") if number % 2 else ("shared", "own"):
            out = subprocess.run([sys.executable, __file__, "--mode", mode, "--requests",
                                  str(args.requests), "--processes", str(args.processes)],
                                 capture_output=True, text=True, timeout=600, check=True)
            result = json.loads(out.stdout) | {"round": number}
            results.append(result)
            print(f"| {number} | {mode} | {result['us_per_request']} | {result['render_ms']} "
                  f"| {result['render_bytes']} |", flush=True)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({"command": sys.argv, "results": results,
                                         "load_after": os.getloadavg()}, indent=2),
                             encoding="utf-8")
    print(f"\nwrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
