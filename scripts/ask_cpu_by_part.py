"""Where the CPU of `POST /api/ask` goes: process CPU per request, split by part.

Builds the app in this process (Flask's test client, no HTTP server), asks the
questions in turn on one thread after a warm-up, and adds up the process CPU seconds
(all threads, the model's own included) spent inside each wrapped part: the
question's embedding, the embedding of sentences (the answering sentence of a passage
that shares no word with the question is chosen by the model), the ranking (its vector
and keyword searches), the choice of each document's passage and sentence, fetching
chunks, the JSON form. Parts nest (rank holds the keyword searches; the highlight holds
the sentence embedding), so they do not add up to the whole. Also counts how many
requests had a shown passage sharing no word with the question (the sentence embedding's
cases; the sentences already kept are not embedded again), and the calls of each part (a
question whose vector is kept makes no call to embed it). The checkout the script is run
from is the one measured (script_setup puts its `qa` first, whatever PYTHONPATH says).

    QA_MODEL_CACHE=… .venv/bin/python CHECKOUT/scripts/ask_cpu_by_part.py \
        --config C [--questions Q.jsonl] [-n 200] [--warm-up 10] [--model-threads 0] \
        [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa import answer as answer_module
from qa.config import load_config, with_model_cache_from_environment
from qa.index import store
from qa.web import create_app

REPO = Path(__file__).resolve().parent.parent
WARM_UP = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--questions", type=Path,
                        default=REPO / "benchmarks" / "shipped_dev_questions.jsonl")
    parser.add_argument("-n", "--requests", type=int, default=200)
    parser.add_argument("--warm-up", type=int, default=WARM_UP,
                        help="questions asked first, not counted (they also fill caches)")
    parser.add_argument("--model-threads", type=int, default=None,
                        help="override model.threads (0 = all cores)")
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()

    config = with_model_cache_from_environment(load_config(args.config))
    if args.model_threads is not None:
        config = dataclasses.replace(
            config, model=dataclasses.replace(config.model, threads=args.model_threads))
    app = create_app(config)
    retriever = app.extensions["qa_retriever"]
    cpu: Counter[str] = Counter()
    calls: Counter[str] = Counter()

    def wrap(owner: object, name: str, part: str) -> None:
        inner = getattr(owner, name)

        def timed(*args_, **kwargs):
            started = time.process_time()
            try:
                return inner(*args_, **kwargs)
            finally:
                cpu[part] += time.process_time() - started
                calls[part] += 1

        setattr(owner, name, timed)

    wrap(retriever, "ask", "ask (the whole question)")
    wrap(retriever.embedder, "embed_queries", "embedding the question")
    wrap(retriever.embedder, "embed_passages", "embedding sentences")
    wrap(retriever, "rank", "rank (vector + keyword search, fusion)")
    wrap(store.StoreReader, "keyword_search", "keyword searches")
    wrap(retriever, "stand_ins", "passage and sentence choice")
    wrap(retriever, "highlights_for", "highlights (sentence embedding included)")
    # Called for the requests with a shown passage whose sentences share no word with the
    # question: its calls count the requests that may need the sentence embedding.
    wrap(retriever, "_highlights", "shown passages sharing no word (calls = requests)")
    wrap(store.StoreReader, "chunks", "fetching chunks")
    wrap(answer_module.Answer, "to_dict", "the JSON form (to_dict)")

    lines = args.questions.read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.strip()]
    client = app.test_client()
    for question in questions[:args.warm_up]:
        client.post("/api/ask", json={"question": question, "top_k": 5})
    cpu.clear()
    calls.clear()
    load_before = os.getloadavg()
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    for number in range(args.requests):
        response = client.post("/api/ask", json={
            "question": questions[number % len(questions)], "top_k": 5})
        if response.status_code != 200:
            raise SystemExit(f"status {response.status_code}: {response.get_data(as_text=True)}")
    total = time.process_time() - cpu_started
    wall = time.perf_counter() - wall_started
    n = args.requests
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs; load average "
          f"{load_before} before, {os.getloadavg()} after; qa from "
          f"{Path(sys.modules['qa'].__file__).parent}")
    print(f"{n} requests: {1000 * total / n:.1f} ms CPU and {1000 * wall / n:.1f} ms wall "
          "per request\n")
    print("| part | CPU ms / request | calls |")
    print("|---|---|---|")
    parts = {}
    for part, seconds in cpu.most_common():
        parts[part] = {"cpu_ms_per_request": round(1000 * seconds / n, 2), "calls": calls[part]}
        print(f"| {part} | {1000 * seconds / n:.2f} | {calls[part]} |")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({
            "command": sys.argv, "requests": n, "questions": len(questions),
            "cpu_ms_per_request": round(1000 * total / n, 2),
            "wall_ms_per_request": round(1000 * wall / n, 2), "parts": parts,
            "load_before": load_before, "load_after": os.getloadavg(),
        }, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
