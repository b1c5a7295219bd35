"""Throughput and latency of `POST /api/ask` against a real `qa serve`, at several
concurrency levels.

Starts `--processes` N `qa serve` processes (default 1), each on its own free loopback
port with the given config, or with `--workers N` one `qa serve --workers N` (N worker
processes on one port, qa.web.workers) (its index must exist: run `qa index` first; the processes
read the same index folder), waits until all listen and sends each a few warm-up
questions. Then, for each concurrency level, that many clients (threads, each with its
own keep-alive connection to every server) send questions in turn, spread round-robin
over the servers as a reverse proxy would, until together they have sent `-n` requests
or `--seconds` have passed. Latency is the client's wall time, question embedding and
JSON included. The servers' CPU seconds (from /proc) are read around each level and
summed (with `--workers`, over the supervisor and its workers), so CPU ms per request is
the servers' own work; after each level each server process's
memory is read from /proc/PID/smaps_rollup (RSS, and PSS, which splits pages shared
between processes among them) and /proc/PID/status (peak RSS). Prints tables and writes
JSON; stops every server with SIGTERM (SIGKILL if it has not exited 30 s later), also on
Ctrl-C or an error. Only 127.0.0.1.

    .venv/bin/python scripts/bench_api.py [--config config.yaml] [--concurrency 1 4 8] \
        [-n 400] [--seconds 30] [--questions benchmarks/shipped_dev_questions.jsonl ...] \
        [--fresh] [--processes 1 | --workers 2] [--json artifacts/bench_api.json]

`--questions` takes JSON Lines files ({"question": …} per line) and SQuAD-format .json
files (every question, in file order), read in the order given. By default the levels
cycle through the questions from the start, so a later level asks questions an earlier
one asked: a server that keeps the vectors of recent questions is then flattered.
`--fresh` asks each question at most once: the warm-up takes the last questions of the
list, and each level goes on from where the previous one stopped; a level that runs out
stops there (its "repeats" would otherwise count the questions asked a second time).
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

import yaml

REPO = Path(__file__).resolve().parent.parent
FALLBACK_QUESTIONS = [
    "2021年宜宾白酒产业的营业收入是多少？",
    "景德镇陶瓷产业如何数字化？",
    "What did Wuzhou do for its digital economy?",
]
WARM_UP = 5
STOP_SECONDS = 30.0
# The smaps_rollup fields kept (kB): RSS, PSS and how PSS splits into anonymous memory
# (the process's own heap: FAISS vectors, Python objects) and file pages (mapped files:
# tantivy's postings, libraries), and what is shared or private.
MEMORY_FIELDS = ("Rss", "Pss", "Pss_Anon", "Pss_File", "Shared_Clean", "Shared_Dirty",
                 "Private_Clean", "Private_Dirty")


def start_servers(config: Path, count: int, timeout: float, checkout: Path = REPO,
                  workers: int = 1) -> list[tuple[subprocess.Popen, str]]:
    """`count` processes of `qa serve --port 0` (with `--workers` if `workers` > 1) run
    from `checkout`, all started at once, and their URLs, once every one listens. Stops
    them all if one does not start."""
    processes: list[subprocess.Popen] = []
    found: list[list[str]] = []

    def read(process: subprocess.Popen, urls: list[str]) -> None:
        for line in process.stdout:
            if line.startswith("serving on ") and not urls:
                urls.append(line.split()[2])

    try:
        for _ in range(count):
            process = subprocess.Popen(
                [sys.executable, "-m", "qa.cli", "serve", "--config", str(config),
                 "--host", "127.0.0.1", "--port", "0",
                 *(["--workers", str(workers)] if workers > 1 else [])],
                cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                env=os.environ | {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
            )
            processes.append(process)
            found.append([])
            threading.Thread(target=read, args=(process, found[-1]), daemon=True).start()
        deadline = time.monotonic() + timeout
        while (not all(found) and all(p.poll() is None for p in processes)
               and time.monotonic() < deadline):
            time.sleep(0.1)
        if not all(found):
            raise SystemExit("qa serve did not start (is the index built? run `qa index`)")
    except BaseException:
        stop_servers(processes)
        raise
    return [(process, urls[0]) for process, urls in zip(processes, found, strict=True)]


def stop_servers(processes: list[subprocess.Popen], grace: float = STOP_SECONDS) -> None:
    """SIGTERM to every process, then wait for each (bounded); SIGKILL any still running."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the workers of a `qa serve --workers`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def server_pids(processes: list[subprocess.Popen]) -> list[int]:
    """Every server process: each started process and its workers, if any."""
    return [pid for p in processes for pid in (p.pid, *children(p.pid))]


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ticks(proc_stat: str) -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs together, from the `cpu` line of /proc/stat
    (idle and iowait are not busy; guest time is already counted in user)."""
    fields = [int(value) for value in proc_stat.splitlines()[0].split()[1:9]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def busy_cores(before: tuple[int, int], after: tuple[int, int], cpus: int) -> float:
    """How many of the machine's `cpus` were busy on average between two cpu_ticks."""
    total = after[1] - before[1]
    return round(cpus * (after[0] - before[0]) / total, 2) if total > 0 else 0.0


def parse_smaps_rollup(text: str) -> dict[str, int]:
    """The `Name:  N kB` lines of /proc/PID/smaps_rollup as {name: kB} (the first line,
    the address range of the rollup, is skipped)."""
    sizes = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            sizes[name.strip()] = int(parts[0])
    return sizes


def process_memory(pid: int) -> dict[str, float]:
    """RSS, PSS and their parts (MB) and the peak RSS so far (VmHWM, MB) of a process."""
    rollup = parse_smaps_rollup(Path(f"/proc/{pid}/smaps_rollup").read_text())
    status = parse_smaps_rollup(Path(f"/proc/{pid}/status").read_text())
    memory = {f"{name.lower()}_mb": round(rollup[name] / 1024, 1)
              for name in MEMORY_FIELDS if name in rollup}
    memory["peak_rss_mb"] = round(status.get("VmHWM", 0) / 1024, 1)
    return memory


def index_files(config: Path) -> dict[str, float]:
    """MB on disk of each file or folder of the config's live local store (the vectors,
    the chunk store, the keyword index), to set the servers' memory against."""
    settings = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    index_dir = config.parent / settings.get("index_dir", "embeddings/index")
    current = index_dir / "CURRENT"
    if not current.is_file():
        return {}
    store = index_dir / current.read_text(encoding="utf-8").strip()
    sizes = {}
    for entry in sorted(store.glob("*")):
        files = [entry] if entry.is_file() else [f for f in entry.rglob("*") if f.is_file()]
        sizes[entry.name] = round(sum(f.stat().st_size for f in files) / 2**20, 1)
    return sizes


def ask(connection: http.client.HTTPConnection, question: str, top_k: int
        ) -> tuple[int, bytes]:
    body = json.dumps({"question": question, "top_k": top_k}).encode()
    connection.request("POST", "/api/ask", body=body,
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


def read_questions(paths: list[Path]) -> list[str]:
    """The questions of JSON Lines files and SQuAD-format .json files, in order (missing
    files are skipped, as the default file may be)."""
    questions: list[str] = []
    for path in paths:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix == ".json":
            questions += [qa["question"] for article in json.loads(text)["data"]
                          for paragraph in article["paragraphs"] for qa in paragraph["qas"]]
        else:
            questions += [json.loads(line)["question"] for line in text.splitlines()
                          if line.strip()]
    return questions


def run_level(servers: list[tuple[str, int]], questions: list[str], clients: int,
              requests: int, seconds: float, top_k: int, start: int | None = None) -> dict:
    """`clients` threads asking until `requests` are sent or `seconds` have passed; the
    n-th request goes to server n mod len(servers). With `start`, the n-th request asks
    question start + n, and the level stops when the list runs out (no repeats)."""
    if start is not None:
        requests = min(requests, max(0, len(questions) - start))
    lock = threading.Lock()
    latencies: list[float] = []
    took: list[float] = []
    errors: list[str] = []
    sent = [0]
    per_server = [0] * len(servers)
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        connections = [http.client.HTTPConnection(host, port, timeout=60)
                       for host, port in servers]
        try:
            while time.monotonic() < deadline:
                with lock:
                    if sent[0] >= requests:
                        return
                    index = sent[0]
                    sent[0] += 1
                    target = index % len(servers)
                    per_server[target] += 1
                if start is None:
                    question = questions[(index + number) % len(questions)]
                else:
                    question = questions[start + index]
                started = time.perf_counter()
                try:
                    status, payload = ask(connections[target], question, top_k)
                except (OSError, http.client.HTTPException) as exc:
                    with lock:
                        errors.append(type(exc).__name__)
                    connections[target].close()
                    connections[target] = http.client.HTTPConnection(*servers[target],
                                                                     timeout=60)
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    if status == 200:
                        latencies.append(elapsed)
                        took.append(json.loads(payload)["took_ms"])
                    else:
                        errors.append(str(status))
        finally:
            for connection in connections:
                connection.close()

    # Daemon threads: a Ctrl-C during a level stops the servers and exits without them.
    threads = [threading.Thread(target=client, args=(n,), daemon=True)
               for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if not latencies:
        return {"concurrency": clients, "requests": 0, "errors": len(errors),
                "per_server": per_server, "sent": sent[0]}
    return {
        "concurrency": clients, "requests": len(latencies), "errors": len(errors),
        "sent": sent[0], "first_question": start,
        "error_kinds": sorted(set(errors)), "seconds": round(wall, 2),
        "per_server": per_server,
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "took_ms_p50": round(percentile(took, 0.50), 1),
    }


def measure(processes: list[subprocess.Popen], servers: list[tuple[str, int]],
            questions: list[str], args: argparse.Namespace) -> list[dict]:
    """Warm every server up, then run each concurrency level; CPU summed over the servers,
    memory read per server after each level."""
    for host, port in servers:
        # With --workers, one new connection per question, so that (most likely) every
        # worker gets some: whichever worker is idle accepts a new connection.
        warm_up = questions[-WARM_UP:] if args.fresh else questions[:WARM_UP]
        for question in warm_up * args.workers:
            warm = http.client.HTTPConnection(host, port, timeout=60)
            ask(warm, question, args.top_k)
            warm.close()
    levels = []
    # --fresh: the warm-up's questions (the last ones) are never measured.
    measured = questions[:-WARM_UP] if args.fresh else questions
    next_question = 0 if args.fresh else None
    for clients in args.concurrency:
        pids = server_pids(processes)
        per_process_before = [server_cpu_seconds(pid) for pid in pids]
        client_before = sum(os.times()[:2])
        machine_before = cpu_ticks(Path("/proc/stat").read_text())
        started = time.perf_counter()
        level = run_level(servers, measured, clients, args.requests, args.seconds,
                          args.top_k, next_question)
        if args.fresh:
            next_question += level["sent"]
        wall = time.perf_counter() - started
        per_process = [server_cpu_seconds(pid) - before
                       for pid, before in zip(pids, per_process_before, strict=True)]
        cpu = sum(per_process)
        level["pids"] = pids
        level["server_cpu_s_per_process"] = [round(s, 2) for s in per_process]
        machine = cpu_ticks(Path("/proc/stat").read_text())
        # Cores used on average: by the servers, by this client, and by the whole machine
        # (the rest is other people's work, which the servers' share depends on).
        level["server_cores"] = round(cpu / wall, 2)
        level["client_cores"] = round((sum(os.times()[:2]) - client_before) / wall, 2)
        level["machine_busy_cores"] = busy_cores(machine_before, machine, os.cpu_count())
        if level["requests"]:
            level["server_cpu_ms_per_request"] = round(
                1000 * cpu / (level["requests"] + level["errors"]), 1)
        level["memory"] = [process_memory(pid) for pid in pids]
        levels.append(level)
    return levels


def print_tables(levels: list[dict]) -> None:
    print("| concurrency | requests | requests/s | p50 ms | p95 ms | p99 ms | errors "
          "| server took_ms p50 | server CPU ms/request (all servers) "
          "| cores used: servers / client / whole machine |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for level in levels:
        cores = (f"{level['server_cores']} / {level['client_cores']} / "
                 f"{level['machine_busy_cores']}")
        if not level["requests"]:
            print(f"| {level['concurrency']} | 0 | — | — | — | — | {level['errors']} | — | — "
                  f"| {cores} |")
            continue
        print(f"| {level['concurrency']} | {level['requests']} | {level['requests_per_s']} "
              f"| {level['p50_ms']} | {level['p95_ms']} | {level['p99_ms']} "
              f"| {level['errors']} | {level['took_ms_p50']} "
              f"| {level['server_cpu_ms_per_request']} | {cores} |")
    memory = levels[-1]["memory"] if levels else []
    print("\nmemory after the run (MB; PSS_anon + PSS_file = PSS):\n")
    print("| server (pid) | RSS | PSS | PSS anon | PSS file | shared clean | peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for pid, row in zip(levels[-1]["pids"] if levels else [], memory, strict=True):
        print(f"| {pid} | {row['rss_mb']} | {row['pss_mb']} | {row['pss_anon_mb']} "
              f"| {row['pss_file_mb']} | {row['shared_clean_mb']} | {row['peak_rss_mb']} |")
    if len(memory) > 1:
        total = {key: round(sum(row[key] for row in memory), 1) for key in memory[0]}
        print(f"| sum | {total['rss_mb']} | {total['pss_mb']} | {total['pss_anon_mb']} "
              f"| {total['pss_file_mb']} | {total['shared_clean_mb']} "
              f"| {total['peak_rss_mb']} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("-n", "--requests", type=int, default=400,
                        help="Requests per concurrency level (at most).")
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="Time limit per concurrency level.")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--processes", type=int, default=1,
                        help="Server processes over the same index, asked round-robin.")
    parser.add_argument("--workers", type=int, default=1,
                        help="One `qa serve --workers N` (N processes on one port).")
    parser.add_argument("--checkout", type=Path, default=REPO,
                        help="Serve this checkout's code (e.g. main, for a before figure).")
    parser.add_argument("--questions", type=Path, nargs="+",
                        default=[REPO / "benchmarks" / "shipped_dev_questions.jsonl"])
    parser.add_argument("--fresh", action="store_true",
                        help="ask each question at most once over the whole run")
    parser.add_argument("--json", dest="json_out", type=Path,
                        default=REPO / "artifacts" / "bench_api.json")
    args = parser.parse_args()
    if args.processes < 1 or args.workers < 1:
        parser.error("--processes and --workers must be at least 1")
    if args.processes > 1 and args.workers > 1:
        parser.error("--processes or --workers, not both")

    questions = read_questions(args.questions) or FALLBACK_QUESTIONS
    if args.fresh and len(questions) <= WARM_UP:
        parser.error(f"--fresh needs more than {WARM_UP} questions")

    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; load average before {os.getloadavg()}")
    # A SIGTERM to this script stops the servers too (through the `finally` below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = start_servers(args.config.resolve(), args.processes, timeout=300,
                            checkout=args.checkout.resolve(), workers=args.workers)
    processes = [process for process, _ in started]
    urls = [url for _, url in started]
    servers = [(host, int(port)) for host, port in
               (url.removeprefix("http://").rsplit(":", 1) for url in urls)]
    try:
        levels = measure(processes, servers, questions, args)
    finally:
        stop_servers(processes)

    load_after = os.getloadavg()
    print(f"{len(questions)} questions, top_k={args.top_k}, {len(urls)} server process(es) "
          f"(--workers {args.workers}) "
          f"{', '.join(urls)} running {args.checkout.resolve()}; "
          f"load average after {load_after}\n")
    print_tables(levels)
    files = index_files(args.config.resolve())
    print("\nindex on disk (MB): " + ", ".join(f"{k} {v}" for k, v in files.items()))
    report = {
        "command": sys.argv, "checkout": str(args.checkout.resolve()), "warm_up": WARM_UP,
        "top_k": args.top_k, "processes": args.processes, "workers": args.workers,
        "questions": len(questions), "fresh": args.fresh, "levels": levels, "index_files_mb": files,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform(), "load_after": load_after},
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nwrote {args.json_out}")
    return 0 if all(level["errors"] == 0 for level in levels) else 1


if __name__ == "__main__":
    sys.exit(main())
