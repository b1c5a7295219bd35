"""A bounded load test of `GET /api/ask` against a real `qa serve`: at each concurrency
(1, 4, 8, 16 by default) a fixed number of questions, each client on its own keep-alive
connection, within a time bound. Prints a table (requests, errors, p50/p95/p99 ms,
requests/s, the server's resident memory) and writes JSON; stops the server with SIGTERM.

    .venv/bin/python scripts/load.py --config config.yaml -n 48 --json load.json

`--against DIR` also serves the same index with the code of another checkout (e.g. the
last commit before a change: `git worktree add /tmp/before <commit>`), and runs each
concurrency level against both servers in turn, so that the two are measured side by side
on the same machine load.

The index must exist (`qa index`). Errors are non-200 answers and failed connections.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import FALLBACK_QUESTIONS, REPO, percentile, start_servers  # noqa: E402


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
    return {"concurrency": clients, "latencies": latencies, "errors": errors[0],
            "seconds": seconds}


def summary(runs: list[dict]) -> dict:
    """One row for the runs of one server at one concurrency."""
    latencies = [ms for run in runs for ms in run["latencies"]]
    errors = sum(run["errors"] for run in runs)
    done = len(latencies) + errors
    return {
        "concurrency": runs[0]["concurrency"], "requests": done, "errors": errors,
        "p50_ms": round(percentile(latencies, 0.50), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "requests_per_s": round(done / sum(run["seconds"] for run in runs), 2),
    }


def resident_mb(pid: int) -> float | None:
    """The process's resident memory (Linux /proc), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("-n", "--requests", type=int, default=48,
                        help="Questions per concurrency level.")
    parser.add_argument("--levels", default="1,4,8,16")
    parser.add_argument("--against", type=Path,
                        help="Another checkout to measure side by side with this one.")
    parser.add_argument("--rounds", type=int, default=1,
                        help="Split each level into this many rounds, alternating which "
                             "server goes first (with --against).")
    parser.add_argument("--time-limit", type=float, default=300.0,
                        help="Seconds for the whole run, start-up excluded.")
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    questions = list(FALLBACK_QUESTIONS)
    checkouts = {"this": REPO} | ({"against": args.against.resolve()} if args.against else {})
    servers = {}
    rows = []
    try:
        for name, checkout in checkouts.items():
            servers[name] = start_servers(args.config.resolve(), 1, 180, checkout)[0]
            for question in questions:  # warm up
                run_level(servers[name][1], 1, 1, [question], time.monotonic() + 60)
        deadline = time.monotonic() + args.time_limit
        for level in (int(x) for x in args.levels.split(",")):
            runs: dict[str, list[dict]] = {name: [] for name in servers}
            for round_ in range(args.rounds):
                # Alternate which server goes first, so neither always meets a fresher machine.
                order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
                for name in order:
                    runs[name].append(run_level(servers[name][1], level,
                                                args.requests // args.rounds, questions,
                                                deadline))
            for name, (process, _) in servers.items():
                rows.append({"server": name, **summary(runs[name]),
                             "rss_mb": resident_mb(process.pid)})
    finally:
        for process, _ in servers.values():
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    print(f"python scripts/load.py {' '.join(sys.argv[1:])}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; "
          + ", ".join(f"{name} = {path}" for name, path in checkouts.items()))
    print("| server | concurrency | requests | errors | p50 ms | p95 ms | p99 ms "
          "| requests/s | RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['server']} | {row['concurrency']} | {row['requests']} | {row['errors']} "
              f"| {row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} "
              f"| {row['requests_per_s']} | {row['rss_mb']} |")
    if args.json_out:
        args.json_out.write_text(json.dumps({
            "command": sys.argv, "checkouts": {k: str(v) for k, v in checkouts.items()},
            "cores": os.cpu_count(), "load_average": os.getloadavg(), "levels": rows,
        }, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
