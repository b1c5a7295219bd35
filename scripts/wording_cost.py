"""What the in-order re-rank (retrieval.in_order_weight) adds to one hybrid question.

Indexes SQuAD-format files as `qa eval` does (embeddings from the cache it fills),
prepares every question once, then times `Retriever.rank(..., "hybrid")` with the
re-rank off and on, alternating question by question so that both see the same load,
and the re-rank step alone. The fold cache is emptied before each timing: in a large
archive a question's candidates are rarely ones folded before.

    QA_MODEL_CACHE=.cache/models .venv/bin/python scripts/wording_cost.py \\
        benchmarks/news/news_dev_paragraphs.json benchmarks/news/news_heldout_paragraphs.json \\
        benchmarks/news/news_lookalikes.json --json artifacts/wording_cost.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa import normalize
from qa.cli import cached, load_embedder
from qa.config import load_config
from qa.evaluation import read_squad
from qa.index.saved_index import build_index_from_documents, open_index
from qa.retriever import Retriever


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--limit", type=int, default=1000, help="questions timed, at most")
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    config = load_config(args.config)
    evalset = read_squad(args.files)
    questions = [q.question for q in evalset.questions][:args.limit]
    embedder = cached(load_embedder(config), config)
    with tempfile.TemporaryDirectory() as folder:
        index_dir = Path(folder) / "index"
        build_index_from_documents(config, embedder, evalset.documents, index_dir)
        base = config.replace(index_dir=index_dir)
        engine = open_index(base)
        retrievers = {}
        for weight in (0.0, config.retrieval.in_order_weight or 0.2):
            settings = dataclasses.replace(base.retrieval, in_order_weight=weight)
            retrievers[weight] = Retriever(dataclasses.replace(base, retrieval=settings),
                                           engine, embedder)
        off, on = retrievers.values()
        vectors = embedder.embed_queries([off.embedding_text(q) for q in questions])
        times: dict[str, list[float]] = {"rank, re-rank off": [], "rank, re-rank on": [],
                                          "re-rank step alone": []}
        started = time.monotonic()
        for question, vector in zip(questions, vectors, strict=True):
            with engine.snapshot() as snapshot:
                query = off.prepare(question, vector=vector, snapshot=snapshot)
                for name, retriever in (("rank, re-rank off", off), ("rank, re-rank on", on)):
                    normalize._cached_fold.cache_clear()
                    t0 = time.perf_counter()
                    retriever.rank(query, "hybrid", 50, snapshot)
                    times[name].append((time.perf_counter() - t0) * 1000)
                ranked = off.rank(query, "hybrid", 50, snapshot)
                normalize._cached_fold.cache_clear()
                t0 = time.perf_counter()
                on._by_wording(snapshot, query, ranked)
                times["re-rank step alone"].append((time.perf_counter() - t0) * 1000)
            if time.monotonic() - started > 600:
                break
        engine.close()
    result = {"files": [p.name for p in args.files], "questions": len(times["rank, re-rank off"]),
              "chunks": len(evalset.documents), "cpus": os.cpu_count(),
              "load_average": os.getloadavg()[0],
              "ms": {name: {"p50": round(statistics.median(v), 3),
                            "p95": round(percentile(v, 0.95), 3)} for name, v in times.items()}}
    print(f"{result['questions']} questions, {len(evalset.documents)} paragraphs, "
          f"load average {result['load_average']:.1f}")
    print("| step | p50 ms | p95 ms |\n|---|---|---|")
    for name, value in result["ms"].items():
        print(f"| {name} | {value['p50']} | {value['p95']} |")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
