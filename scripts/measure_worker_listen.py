"""How `qa serve --workers` should share its port: one listening socket that every worker
accepts on ("socket", the parent binds it and the workers inherit it), or one socket per
worker bound with SO_REUSEPORT ("reuse_port", the kernel picks a worker by a hash of the
client's address and port).

No model and no index: each worker serves a WSGI app that spends `--work-ms` of pure
Python CPU per request (holding the GIL, as most of a question's work does) and answers
its pid. For each mode in turn (`--rounds` rounds, alternating), `qa.web.workers`
starts `--workers` workers on a free 127.0.0.1 port; then `--concurrency` clients ask
for `--seconds`, first each on its own keep-alive connection (as bench_api.py does),
then each on a new connection per request. Prints requests/s, p50/p95, how the requests
and the keep-alive connections fell on the workers, and writes JSON.

    .venv/bin/python scripts/measure_worker_listen.py [--workers 2] [--concurrency 8] \
        [--seconds 10] [--rounds 2] [--work-ms 20] [--json artifacts/worker_listen.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from bench_api import percentile, stop_servers  # noqa: E402
from script_setup import REPO  # noqa: E402 - this checkout's qa first on sys.path

MODES = ("socket", "reuse_port")


def busy_app(work_ms: float):
    """A WSGI app that burns `work_ms` of Python CPU and answers its pid."""

    def app(environ, start_response):
        end = time.thread_time() + work_ms / 1000
        total = 0
        while time.thread_time() < end:
            total += sum(range(200))
        body = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return app


def serve(mode: str, workers: int, work_ms: float) -> int:
    """Run the supervisor (this process) with `workers` workers of the busy app."""
    from qa.config import ServerConfig
    from qa.web.workers import Supervisor, listening_socket

    sock = listening_socket("127.0.0.1", 0, share=mode)
    supervisor = Supervisor(
        workers, "127.0.0.1", sock, lambda: (busy_app(work_ms), lambda: None), 4,
        ServerConfig(), announce=lambda url: print(f"serving on {url}", flush=True),
        share=mode)
    return supervisor.run()


def start(mode: str, workers: int, work_ms: float) -> tuple[subprocess.Popen, str, int]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, "--workers", str(workers),
         "--work-ms", str(work_ms)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True)
    line = process.stdout.readline()  # blocks until the workers are ready (or it died)
    if not line.startswith("serving on "):
        process.kill()
        raise SystemExit(f"the {mode} server did not start")
    url = line.split()[2]
    return process, url.rsplit(":", 1)[0].removeprefix("http://"), int(url.rsplit(":", 1)[1])


def run(host: str, port: int, clients: int, seconds: float, keep_alive: bool) -> dict:
    lock = threading.Lock()
    latencies: list[float] = []
    by_pid: Counter[str] = Counter()
    connections_by_pid: Counter[str] = Counter()
    errors = [0]
    deadline = time.monotonic() + seconds

    def client() -> None:
        connection = None
        first = True
        while time.monotonic() < deadline:
            if connection is None:
                connection = http.client.HTTPConnection(host, port, timeout=60)
                first = True
            began = time.perf_counter()
            try:
                connection.request("GET", "/")
                pid = connection.getresponse().read().decode()
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
                connection.close()
                connection = None
                continue
            with lock:
                latencies.append((time.perf_counter() - began) * 1000)
                by_pid[pid] += 1
                if first:
                    connections_by_pid[pid] += 1
            first = False
            if not keep_alive:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    wall = time.perf_counter() - began
    shares = sorted(by_pid.values(), reverse=True)
    return {
        "keep_alive": keep_alive, "requests": len(latencies), "errors": errors[0],
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 0.5), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
        "requests_per_worker": shares,
        "busiest_worker_share": round(shares[0] / len(latencies), 2) if latencies else None,
        "keep_alive_connections_per_worker": sorted(connections_by_pid.values(), reverse=True)
        if keep_alive else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work-ms", type=float, default=20.0)
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--json", dest="json_out", type=Path,
                        default=REPO / "artifacts" / "worker_listen.json")
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.workers, args.work_ms)

    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs; load average before "
          f"{os.getloadavg()}\n")
    print("| round | share | connections | requests/s | p50 / p95 ms | errors "
          "| requests per worker | keep-alive connections per worker |")
    print("|---|---|---|---|---|---|---|---|")
    results = []
    for number in range(1, args.rounds + 1):
        order = MODES if number % 2 else MODES[::-1]
        for mode in order:
            process, host, port = start(mode, args.workers, args.work_ms)
            try:
                for keep_alive in (True, False):
                    result = run(host, port, args.concurrency, args.seconds, keep_alive)
                    result |= {"round": number, "share": mode}
                    results.append(result)
                    print(f"| {number} | {mode} | {'keep-alive' if keep_alive else 'new each'} "
                          f"| {result['requests_per_s']} | {result['p50_ms']} / "
                          f"{result['p95_ms']} | {result['errors']} "
                          f"| {result['requests_per_worker']} "
                          f"| {result['keep_alive_connections_per_worker'] or '—'} |",
                          flush=True)
            finally:
                stop_servers([process])
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({
        "command": sys.argv, "workers": args.workers, "concurrency": args.concurrency,
        "seconds": args.seconds, "work_ms": args.work_ms, "results": results,
        "load_after": os.getloadavg()}, indent=2), encoding="utf-8")
    print(f"\nload average after {os.getloadavg()}; wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
