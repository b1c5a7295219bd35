"""Start-up of `qa ask` and `qa serve`, side by side for one or more checkouts.

    .venv/bin/python scripts/bench_startup.py [--checkout /work/main --checkout .]
        [--config config.yaml] [--runs 5] [--question "宜宾白酒产业的营业收入是多少"]
        [--time-limit 600] [--json artifacts/bench_startup.json]

For each round, and each checkout in turn (the order reversed every round, so a busy
machine slows them alike), it runs `python -m qa.cli ask QUESTION --json` with the
checkout as the working directory (so that checkout's `qa` is imported), then starts
`python -m qa.cli serve --port 0` and times how long until `GET /api/health` answers 200,
then stops it with SIGTERM and times how long until the process has exited. Every
checkout asks the same index (`--config`; build it with
`qa index` first) with the same model cache (`QA_MODEL_CACHE` if set).

"cold-ish" is each checkout's first run in this benchmark (the OS may still hold the
files in its page cache; nothing is dropped); "warm" is p50 / min over the other runs.
CPU is user + system seconds of the child: on a shared machine it moves far less than
wall time, so both are printed. Bounded by --runs and --time-limit; listens on 127.0.0.1.

--busy N keeps N busy-loop processes running for the whole benchmark, to see start-up and
stop on a loaded machine (they end with it, and within --time-limit in any case).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 120.0


def child_env() -> dict[str, str]:
    # No bytecode written into a checkout we only read (e.g. someone else's main).
    return os.environ | {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def run_ask(checkout: Path, config: Path, question: str) -> dict[str, float]:
    """One `qa ask --json` in a fresh process: wall and CPU seconds, took_ms."""
    command = [sys.executable, "-m", "qa.cli", "ask", question, "--json",
               "--config", str(config)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=checkout, env=child_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = process.communicate(timeout=READY_TIMEOUT)
    wall = time.perf_counter() - started
    usage = _children_delta()
    if process.returncode != 0:
        raise SystemExit(f"qa ask failed in {checkout}: {stderr.decode()[-500:]}")
    took = json.loads(stdout)["took_ms"]
    return {"wall_s": wall, "cpu_s": usage, "took_ms": took}


_last_children = [0.0]


def _children_delta() -> float:
    """CPU seconds of the children reaped since the last call (one child runs at a time)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    delta, _last_children[0] = total - _last_children[0], total
    return delta


def run_serve(checkout: Path, config: Path) -> dict[str, float]:
    """`qa serve --port 0`: seconds from start until /api/health answers 200."""
    command = [sys.executable, "-m", "qa.cli", "serve", "--config", str(config),
               "--host", "127.0.0.1", "--port", "0"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=checkout, env=child_env(), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    port: list[int] = []

    def read() -> None:
        for line in process.stdout:
            found = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
            if found and not port:
                port.append(int(found.group(1)))

    threading.Thread(target=read, daemon=True).start()
    ready = None
    deadline = started + READY_TIMEOUT
    try:
        while time.perf_counter() < deadline and process.poll() is None:
            if port and _healthy(port[0]):
                ready = time.perf_counter() - started
                break
            time.sleep(0.02)
    finally:
        signalled = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
            stopped = time.perf_counter() - signalled
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            stopped = float("inf")
    cpu = _children_delta()
    if ready is None:
        raise SystemExit(f"qa serve in {checkout} was not ready within {READY_TIMEOUT} s")
    return {"ready_s": ready, "cpu_s": cpu, "stop_s": stopped}


def start_busy_loops(count: int, seconds: float) -> list[subprocess.Popen]:
    """`count` processes that spin on a core for at most `seconds`."""
    spin = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    return [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(count)]


def _healthy(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/api/health")
        healthy = connection.getresponse().status == 200
        connection.close()
        return healthy
    except OSError:
        return False


def summary(values: list[float]) -> dict[str, float]:
    """cold-ish (the first run), then p50 and min of the rest (all, with one run)."""
    warm = values[1:] or values
    return {"cold": round(values[0], 3), "p50": round(statistics.median(warm), 3),
            "min": round(min(warm), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, action="append",
                        help="A checkout of newsqa (repeat; default: this one).")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--question", default="宜宾白酒产业的营业收入是多少")
    parser.add_argument("--time-limit", type=float, default=600.0)
    parser.add_argument("--busy", type=int, default=0,
                        help="Busy-loop processes to run alongside (default 0).")
    parser.add_argument("--json", dest="json_out", type=Path,
                        default=REPO / "artifacts" / "bench_startup.json")
    args = parser.parse_args()
    checkouts = [c.resolve() for c in (args.checkout or [REPO])]
    config = args.config.resolve()
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; load average before {os.getloadavg()}")

    results: dict[str, dict[str, list[float]]] = {
        str(c): {"ask_wall_s": [], "ask_cpu_s": [], "took_ms": [], "serve_ready_s": [],
                 "serve_cpu_s": [], "serve_stop_s": []} for c in checkouts}
    busy = start_busy_loops(args.busy, args.time_limit)
    try:
        measure(args, checkouts, config, results)
    finally:
        for process in busy:
            process.kill()
            process.wait(10)
    load_after = os.getloadavg()
    report_results(args, config, results, load_after)
    return 0


def measure(args: argparse.Namespace, checkouts: list[Path], config: Path,
            results: dict[str, dict[str, list[float]]]) -> None:
    _children_delta()
    deadline = time.monotonic() + args.time_limit
    for round_number in range(args.runs):
        if time.monotonic() > deadline:
            print(f"time limit reached after {round_number} rounds")
            break
        order = checkouts if round_number % 2 == 0 else checkouts[::-1]
        for checkout in order:
            ask = run_ask(checkout, config, args.question)
            serve = run_serve(checkout, config)
            row = results[str(checkout)]
            row["ask_wall_s"].append(ask["wall_s"])
            row["ask_cpu_s"].append(ask["cpu_s"])
            row["took_ms"].append(ask["took_ms"])
            row["serve_ready_s"].append(serve["ready_s"])
            row["serve_cpu_s"].append(serve["cpu_s"])
            row["serve_stop_s"].append(serve["stop_s"])


def report_results(args: argparse.Namespace, config: Path,
                   results: dict[str, dict[str, list[float]]], load_after: tuple) -> None:

    print(f"load average after {load_after}; cold-ish = first run, p50/min over the rest\n")
    header = "| checkout | `qa ask` wall cold / p50 / min | CPU p50 | " \
             "`qa serve` ready cold / p50 / min | CPU p50 | SIGTERM to exit p50 / max |"
    print(header)
    print("|---|---|---|---|---|---|")
    report = {"command": sys.argv, "busy_loops": args.busy, "question": args.question,
              "config": str(config),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "python": platform.python_version(), "load_after": load_after},
              "checkouts": {}}
    for checkout, row in results.items():
        if not row["ask_wall_s"]:
            continue
        ask, ask_cpu = summary(row["ask_wall_s"]), summary(row["ask_cpu_s"])
        serve, serve_cpu = summary(row["serve_ready_s"]), summary(row["serve_cpu_s"])
        print(f"| {checkout} | {ask['cold']:.2f} / {ask['p50']:.2f} / {ask['min']:.2f} s | "
              f"{ask_cpu['p50']:.2f} s | {serve['cold']:.2f} / {serve['p50']:.2f} / "
              f"{serve['min']:.2f} s | {serve_cpu['p50']:.2f} s | "
              f"{statistics.median(row['serve_stop_s']):.2f} / {max(row['serve_stop_s']):.2f} s |")
        report["checkouts"][checkout] = {"runs": row, "ask_wall": ask, "ask_cpu": ask_cpu,
                                         "serve_ready": serve, "serve_cpu": serve_cpu}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nwrote {args.json_out}")


if __name__ == "__main__":
    sys.exit(main())
