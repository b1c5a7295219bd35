"""Per-question cost on Milvus Lite before and after flushing the collection, side by side
in one run: the same index, the same questions, first with the rows as the engine left
them before it flushed (growing segments, scanned row by row by every search), then
after one `Collection.flush()` (sealed, indexed segments). Per mode: the median wall
time of a question (`rank()` to depth 50 and the chunks' texts, as `qa eval` asks it) and
the Milvus calls it made; and on how many questions the two states give the same top-50
chunks in the same order. (They differ in hybrid mode: before a flush, Milvus Lite scored
a BM25 search restricted to some ids differently from the full search, so the keyword
scores hybrid mode fills in for vector hits were off; see `tests/test_milvus_engine.py`.)

    PYTHONPATH=. QA_MODEL_CACHE=.cache/models .venv/bin/python scripts/milvus_flush_cost.py \\
        ../shared/benchmarks/cmrc2018/cmrc2018_dev.json --questions 60 --json artifacts/flush.json
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from script_setup import announce, with_embedder

from qa.cli import load_config_defaults
from qa.config import MODES
from qa.evaluation import CHUNK_DEPTH, read_squad
from qa.index import milvus_collection
from qa.index.engines import discard_scratch, scratch_config
from qa.index.saved_index import build_index_from_documents, open_index
from qa.retriever import Retriever

COUNTED = ("search", "query", "flush", "load_collection", "has_collection",
           "describe_collection", "list_aliases")


def count_calls(counts: collections.Counter) -> None:
    """Count the Milvus client's calls by name (wrapping its methods in place)."""
    client = milvus_collection.MilvusClient
    for name in COUNTED:
        original = getattr(client, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)

        setattr(client, name, counted)


def ask_all(retriever: Retriever, queries: list, counts: collections.Counter) -> dict:
    """Per mode: median ms per question, Milvus calls per question, the ranked ids."""
    result = {}
    for mode in MODES:
        times, rankings = [], []
        counts.clear()
        for query in queries:
            started = time.perf_counter()
            with retriever.engine.snapshot() as snapshot:
                ranked = retriever.rank(query, mode, CHUNK_DEPTH, snapshot)
                snapshot.chunks([c.chunk_id for c in ranked])
            times.append((time.perf_counter() - started) * 1000)
            rankings.append([c.chunk_id for c in ranked])
        result[mode] = {"median_ms": round(statistics.median(times), 1),
                        "calls_per_question": {k: round(v / len(queries), 2)
                                               for k, v in sorted(counts.items())},
                        "rankings": rankings}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    announce()
    config, embedder = with_embedder(load_config_defaults())
    evalset = read_squad(args.files)
    picked = random.Random(args.seed).sample(evalset.questions,
                                             min(args.questions, len(evalset.questions)))
    counts: collections.Counter = collections.Counter()
    count_calls(counts)
    flush = milvus_collection.Collection.flush
    with tempfile.TemporaryDirectory(prefix="qa-flush-") as folder:
        engine_config = scratch_config(config.replace(engine="milvus"), Path(folder) / "m")
        milvus_collection.Collection.flush = lambda self: None  # the engine before flushing
        try:
            build_index_from_documents(engine_config, embedder, evalset.documents,
                                       engine_config.index_dir)
        finally:
            milvus_collection.Collection.flush = flush
        retriever = Retriever(engine_config, open_index(engine_config), embedder)
        try:
            texts = [retriever.validate_question(q.question) for q in picked]
            vectors = embedder.embed_queries([retriever.embedding_text(t) for t in texts])
            with retriever.engine.snapshot() as snapshot:
                queries = [retriever.prepare(t, vector=v, snapshot=snapshot)
                           for t, v in zip(texts, vectors, strict=True)]
                chunks = snapshot.counts()[1]
            before = ask_all(retriever, queries, counts)
            started = time.perf_counter()
            retriever.engine._pair.collection.flush()
            flush_s = time.perf_counter() - started
            after = ask_all(retriever, queries, counts)
        finally:
            retriever.engine.close()
            discard_scratch(engine_config)
    print(f"{len(evalset.documents)} paragraphs, {chunks} chunks, {len(queries)} questions; "
          f"one flush took {flush_s:.1f} s")
    print("| mode | before flush, ms/question | after flush | Milvus calls per question "
          "| same top 50 |")
    print("|---|---|---|---|---|")
    report = {"command": sys.argv, "chunks": chunks, "questions": len(queries),
              "flush_s": round(flush_s, 2), "modes": {}}
    for mode in MODES:
        same = sum(b == a for b, a in zip(before[mode]["rankings"], after[mode]["rankings"],
                                          strict=True))
        calls = ", ".join(f"{k} {v:g}" for k, v in after[mode]["calls_per_question"].items())
        print(f"| {mode} | {before[mode]['median_ms']:.1f} | {after[mode]['median_ms']:.1f} "
              f"| {calls} | {same} of {len(queries)} |")
        report["modes"][mode] = {
            "before_ms": before[mode]["median_ms"], "after_ms": after[mode]["median_ms"],
            "calls_per_question": after[mode]["calls_per_question"], "same_top50": same}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
