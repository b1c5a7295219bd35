"""One app, one process, two servers: `GET /api/ask` one question at a time through
cheroot (`qa.web.server`, the server `qa serve` uses) and through waitress (the server
before it, if it is installed), in alternating rounds. It tells the servers' own cost
apart from anything else that differs between two `qa serve` processes.

    .venv/bin/python scripts/compare_servers.py --config config.yaml --rounds 6 -n 12

The index must exist (`qa index`). Prints p50/p95 per server and writes JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
import script_setup  # noqa: E402,F401 - this checkout's qa first on sys.path
from bench_api import FALLBACK_QUESTIONS, REPO, percentile  # noqa: E402

from qa.config import load_config  # noqa: E402
from qa.web import create_app  # noqa: E402
from qa.web.server import ServerThread, make_server  # noqa: E402


def sequential(address: tuple[str, int], count: int, deadline: float) -> list[float]:
    connection = http.client.HTTPConnection(*address, timeout=60)
    latencies = []
    for number in range(count):
        if time.monotonic() > deadline:
            break
        started = time.perf_counter()
        connection.request("GET", "/api/ask?q=" + quote(FALLBACK_QUESTIONS[number % 3]))
        response = connection.getresponse()
        response.read()
        if response.status == 200:
            latencies.append((time.perf_counter() - started) * 1000)
    connection.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("-n", "--requests", type=int, default=12, help="Questions per round.")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    config = load_config(args.config)
    app = create_app(config)
    threads = config.server.threads
    cheroot = ServerThread(make_server(app, "127.0.0.1", 0, threads)).start()
    host, port = cheroot.url.removeprefix("http://").split(":")
    servers = {"cheroot": (host, int(port))}
    try:
        from waitress.server import create_server
    except ImportError:
        print("waitress is not installed: cheroot alone")
    else:
        waitress = create_server(app, host="127.0.0.1", port=0, threads=threads)
        threading.Thread(target=waitress.run, daemon=True).start()
        servers["waitress"] = ("127.0.0.1", waitress.effective_port)
    deadline = time.monotonic() + args.time_limit
    results: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for address in servers.values():
            sequential(address, 3, deadline)  # warm up
        for round_ in range(args.rounds):
            order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
            for name in order:
                results[name] += sequential(servers[name], args.requests, deadline)
    finally:
        cheroot.stop()
    print(f"python scripts/compare_servers.py {' '.join(sys.argv[1:])}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    rows = []
    for name, latencies in results.items():
        row = {"server": name, "requests": len(latencies),
               "p50_ms": round(percentile(latencies, 0.50), 1),
               "p95_ms": round(percentile(latencies, 0.95), 1)}
        rows.append(row)
        print(f"{name}: {row['requests']} questions, p50 {row['p50_ms']} ms, "
              f"p95 {row['p95_ms']} ms")
    if args.json_out:
        args.json_out.write_text(json.dumps({"command": sys.argv, "rows": rows}, indent=2),
                                 encoding="utf-8")


if __name__ == "__main__":
    main()
