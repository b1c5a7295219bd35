"""The memory of `qa serve --workers N`, process by process, before and after a change.

For each `--run NAME=CHECKOUT[:PARTS]` in turn (`--rounds` rounds, alternating), starts
`qa serve --workers N --port 0` from CHECKOUT on 127.0.0.1, times it until it says
`serving on`, reads /proc/PID/smaps_rollup of the supervisor and of each worker (RSS,
PSS, which splits a shared page among the processes that map it, and its anonymous and
file-backed parts), asks the questions once each over HTTP (`--clients` clients, a new
connection per request, so that both workers answer), reads the memory again and stops
the server. Prints a table per process and summed, and says whether every run gave
the same answers (each answer's JSON without `took_ms`, as scripts/dump_answers.py writes
them: `--answers-dir` writes each run's first round for `cmp`).

PARTS (this checkout's qa.preload only) chooses what the supervisor loads before the
fork: a comma list of `tokenizer`, `dictionary`, `bridge`, `none`, and `no-freeze` (no
gc.freeze() before the fork); without it the checkout's own defaults run.

    QA_MODEL_CACHE=… .venv/bin/python scripts/measure_worker_memory.py --config C \
        --questions Q --run before=/tmp/before --run after=. [--run tok=.:tokenizer] \
        [--workers 2] [--rounds 2] [--answers-dir artifacts] [--json artifacts/m.json]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench_api import (  # noqa: E402
    children,
    process_memory,
    read_questions,
    server_cpu_seconds,
    stop_servers,
)
from script_setup import REPO  # noqa: E402 - this checkout's qa first on sys.path

# Run in the server's process to choose what qa.preload loads (argv[1]: the parts).
LAUNCH = """
import sys
import qa.preload, qa.web.workers
keys = {"tokenizer": qa.preload.MODEL_TOKENIZER, "dictionary": qa.preload.KEYWORD_DICTIONARY,
        "bridge": qa.preload.ENGLISH_BRIDGE}
parts = [p for p in sys.argv[1].split(",") if p]
qa.preload.PARTS = tuple(keys[p] for p in parts if p in keys)
qa.web.workers.FREEZE_BEFORE_FORK = "no-freeze" not in parts
import qa.cli
qa.cli.main(sys.argv[2:])
"""
PART_NAMES = {"tokenizer", "dictionary", "bridge", "none", "no-freeze"}


def start(checkout: Path, parts: str | None, config: Path, workers: int, timeout: float
          ) -> tuple[subprocess.Popen, str, float, list[str]]:
    """`qa serve --workers` from `checkout`; (process, URL, seconds until it announced
    the URL, its stderr lines so far and to come)."""
    serve = ["serve", "--config", str(config), "--host", "127.0.0.1", "--port", "0",
             "--workers", str(workers)]
    command = ([sys.executable, "-c", LAUNCH, parts, *serve] if parts is not None
               else [sys.executable, "-m", "qa.cli", *serve])
    began = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    found: list[tuple[str, float]] = []
    log: list[str] = []

    def read_stdout() -> None:
        for line in process.stdout:
            if line.startswith("serving on ") and not found:
                found.append((line.split()[2], time.perf_counter() - began))

    threading.Thread(target=read_stdout, daemon=True).start()
    threading.Thread(target=lambda: log.extend(process.stderr), daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not found:
        stop_servers([process])
        raise SystemExit(f"qa serve from {checkout} did not start:\n{''.join(log)[-2000:]}")
    return process, found[0][0], found[0][1], log


def memory_of(supervisor: int) -> dict:
    """smaps_rollup of the supervisor and of each worker (MB), and the sums."""
    workers = children(supervisor)
    each = {"supervisor": process_memory(supervisor),
            "workers": [process_memory(pid) for pid in workers]}
    every = [each["supervisor"], *each["workers"]]
    each["total"] = {key: round(sum(m[key] for m in every), 1)
                     for key in ("rss_mb", "pss_mb", "pss_anon_mb", "pss_file_mb")}
    each["worker_pids"] = workers
    return each


def ask_all(url: str, questions: list[str], clients: int, top_k: int) -> list[str]:
    """Each question once, `clients` at a time, each on a new connection; the answers'
    JSON lines (without took_ms) in the questions' order."""
    parts = urlsplit(url)
    answers: list[str] = [""] * len(questions)
    lock = threading.Lock()
    next_index = iter(range(len(questions)))

    def client() -> None:
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            try:
                connection.request("POST", "/api/ask", body=json.dumps(
                    {"question": questions[i], "top_k": top_k}).encode(),
                    headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                body = json.loads(response.read())
            finally:
                connection.close()
            if response.status != 200:
                answers[i] = json.dumps({"status": response.status, **body})
                continue
            del body["took_ms"]
            answers[i] = json.dumps(body, ensure_ascii=False)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    return answers


def one_run(name: str, checkout: Path, parts: str | None, args: argparse.Namespace,
            questions: list[str]) -> dict:
    process, url, seconds, log = start(checkout, parts, args.config, args.workers,
                                       args.timeout)
    try:
        time.sleep(args.settle)
        ready = memory_of(process.pid)
        cpu_before = [server_cpu_seconds(pid) for pid in ready["worker_pids"]]
        began = time.perf_counter()
        answers = ask_all(url, questions, args.clients, args.top_k)
        asking = time.perf_counter() - began
        after = memory_of(process.pid)
        cpu = [round(server_cpu_seconds(pid) - before, 2)
               for pid, before in zip(after["worker_pids"], cpu_before, strict=False)]
    finally:
        stop_servers([process])
    digest = hashlib.sha256("\n".join(answers).encode()).hexdigest()[:16]
    loaded = [line.strip() for line in log if "loaded once for the workers" in line]
    return {"run": name, "checkout": str(checkout), "parts": parts,
            "ready_seconds": round(seconds, 2), "asking_seconds": round(asking, 2),
            "worker_cpu_seconds_asking": cpu, "ready": ready, "after": after,
            "answers_sha256": digest, "loaded_log": loaded, "answers": answers,
            "errors": sum(1 for a in answers if a.startswith('{"status"'))}


def row(result: dict, when: str) -> str:
    memory = result[when]
    sup = memory["supervisor"]
    workers = ", ".join(f"{w['rss_mb']:.0f} / {w['pss_mb']:.0f}" for w in memory["workers"])
    total = memory["total"]
    return (f"| {result['run']} | {when} | {result['ready_seconds']} | "
            f"{sup['rss_mb']:.0f} / {sup['pss_mb']:.0f} | {workers} | "
            f"{total['rss_mb']:.0f} | {total['pss_mb']:.0f} | {total['pss_anon_mb']:.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True,
                        help="JSON lines with a 'question' field, or a SQuAD-format .json")
    parser.add_argument("--run", action="append", required=True, metavar="NAME=CHECKOUT[:PARTS]")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("-n", "--requests", type=int, default=100,
                        help="the first N questions")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds between ready and the first reading")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds a server may take to start")
    parser.add_argument("--answers-dir", type=Path)
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    runs = []
    for spec in args.run:
        name, _, rest = spec.partition("=")
        checkout, _, parts = rest.partition(":")
        if parts and not set(parts.split(",")) <= PART_NAMES:
            parser.error(f"unknown parts in {spec}; choose from {', '.join(sorted(PART_NAMES))}")
        runs.append((name, Path(checkout or REPO).resolve(), parts or None))
    if not args.questions.is_file():
        parser.error(f"no such file: {args.questions}")
    questions = read_questions([args.questions])[: args.requests]
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; load average {os.getloadavg()}; "
          f"started {time.strftime('%H:%M:%S %Z')}")
    results = []
    for round_number in range(1, args.rounds + 1):
        for name, checkout, parts in runs:
            result = one_run(name, checkout, parts, args, questions)
            result["round"] = round_number
            result["load_average"] = os.getloadavg()
            results.append(result)
            print(f"round {round_number} {name}: ready in {result['ready_seconds']} s, "
                  f"{len(questions)} questions in {result['asking_seconds']} s "
                  f"(workers' CPU {result['worker_cpu_seconds_asking']} s), "
                  f"{result['errors']} errors, answers {result['answers_sha256']}; "
                  f"load {result['load_average'][0]:.1f}", flush=True)
            if args.answers_dir and round_number == 1:
                args.answers_dir.mkdir(parents=True, exist_ok=True)
                out = args.answers_dir / f"{name}-answers.jsonl"
                out.write_text("\n".join(result["answers"]) + "\n", encoding="utf-8")
    print("\nMB; RSS / PSS per process; ready = once it announced the URL, after = after "
          f"the {len(questions)} questions\n")
    print("| run | when | ready s | supervisor | workers | RSS, all | PSS, all | PSS anon, all |")
    print("|---|---|---|---|---|---|---|---|")
    for result in results:
        for when in ("ready", "after"):
            print(row(result, when))
    digests = {r["answers_sha256"] for r in results}
    print(f"\nanswers identical in every run: {'yes' if len(digests) == 1 else 'NO'} "
          f"({', '.join(sorted(digests))})")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        for result in results:
            del result["answers"]
        args.json_out.write_text(json.dumps(
            {"command": sys.argv, "machine": platform.platform(), "cpus": os.cpu_count(),
             "results": results}, indent=1), encoding="utf-8")
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
