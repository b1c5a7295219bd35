"""The question's latency with its embedding overlapped with the keyword side
(qa.background_embedding) against the same retriever asking sequentially, question by
question in one process, so both meet the same load.

Opens the index once; for each question (each round), asks it with the background
workers and without (in alternating order), timing wall and process CPU of
`Retriever.ask`. The sentence vectors are not kept in this run (capacity 0), so every
asking pays the same sentence embedding and only the overlap differs.

    QA_MODEL_CACHE=… PYTHONPATH=CHECKOUT .venv/bin/python scripts/overlap_latency.py \
        --config C --questions Q.jsonl [--questions Q2.jsonl] [--rounds 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa.background_embedding import BackgroundWork
from qa.config import load_config, with_model_cache_from_environment
from qa.sentence_vectors import SentenceVectors
from qa.web import open_retriever

WARM_UP = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--questions", type=Path, action="append", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    config = with_model_cache_from_environment(load_config(args.config))
    retriever = open_retriever(config)
    retriever.sentence_vectors = SentenceVectors(retriever.embedder, capacity=0)
    overlapped, sequential = retriever.background, BackgroundWork(workers=0)
    questions = [json.loads(line)["question"] for path in args.questions
                 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for question in questions[:WARM_UP]:
        retriever.ask(question, top_k=args.top_k)
    times: dict[str, dict[str, list[float]]] = {
        name: {"wall": [], "cpu": []} for name in ("overlapped", "sequential")}
    load_before = os.getloadavg()
    for round_ in range(args.rounds):
        for number, question in enumerate(questions):
            order = [("overlapped", overlapped), ("sequential", sequential)]
            if (number + round_) % 2:
                order.reverse()
            for name, background in order:
                retriever.background = background
                cpu, wall = time.process_time(), time.perf_counter()
                retriever.ask(question, top_k=args.top_k)
                times[name]["wall"].append(1000 * (time.perf_counter() - wall))
                times[name]["cpu"].append(1000 * (time.process_time() - cpu))
    overlapped.close()
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs; load average "
          f"{load_before} before, {os.getloadavg()} after; qa from "
          f"{Path(sys.modules['qa'].__file__).parent}")
    print(f"{len(questions)} questions x {args.rounds} rounds\n")
    print("| asking | wall p50 / p95 / mean ms | CPU p50 / mean ms |")
    print("|---|---|---|")
    summary = {}
    for name, measured in times.items():
        wall, cpu = np.array(measured["wall"]), np.array(measured["cpu"])
        summary[name] = {"wall_p50": round(float(np.median(wall)), 1),
                         "wall_p95": round(float(np.percentile(wall, 95)), 1),
                         "wall_mean": round(float(wall.mean()), 1),
                         "cpu_p50": round(float(np.median(cpu)), 1),
                         "cpu_mean": round(float(cpu.mean()), 1)}
        s = summary[name]
        print(f"| {name} | {s['wall_p50']} / {s['wall_p95']} / {s['wall_mean']} | "
              f"{s['cpu_p50']} / {s['cpu_mean']} |")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({
            "command": sys.argv, "questions": len(questions), "rounds": args.rounds,
            "summary": summary, "load_before": load_before, "load_after": os.getloadavg(),
        }, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
