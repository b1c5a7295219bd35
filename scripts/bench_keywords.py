"""Keyword search alone on one store, every variant side by side, question by question.

    PYTHONPATH=. .venv/bin/python scripts/bench_keywords.py --store DIR/index/store-… \
        [--questions 100] [--json artifacts/bench-keywords.json]

For real CMRC/DRCD questions (tokenised and trimmed to the rarest 32 tokens as the
retriever does), times in turn, interleaved so that a noisy machine hurts all alike:

- `fts5`: the store's FTS5 query as the engine runs it (every match scored, then LIMIT);
- `fts5_no_common`: the same without the tokens found in over 5% of the chunks (the
  cheapest FTS5-side fix: fewer rows to score; it changes the ranking a little);
- `tantivy`: the tantivy index beside the store (built first if missing, timed), its
  own BM25;
- `tantivy_rescored`: as the engine runs it, `keyword_rescore.candidates(50)` tantivy
  hits rescored with FTS5's BM25 (document frequencies looked up included);
  `tantivy_rescored_k`: the same from only 50 candidates;
- the idf lookup of each (FTS5's fts5vocab table against tantivy's term dictionary);
- both backends filtered to one source (about 1% of the documents, as bench_scale).

Prints p50/p95 per variant, how many postings the questions touch, and how far each
variant's ranking agrees with FTS5's (same top 1, overlap of the top 10). Opens the store
read-only; only the tantivy folder beside it is written.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from script_setup import SETS  # noqa: E402

from qa.evaluation import read_squad  # noqa: E402
from qa.filters import Filters  # noqa: E402
from qa.index import keyword_rescore, keywords  # noqa: E402
from qa.index.store import STORE_FILE, StoreReader, connect, transaction  # noqa: E402
from qa.index.tantivy_keywords import TantivyKeywords  # noqa: E402
from qa.question_terms import keep_rarest  # noqa: E402
from qa.tokenizer import Tokenizer  # noqa: E402

COMMON_SHARE = 0.05
K = 50


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, (time.perf_counter() - started) * 1000


def percentiles(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(values), 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2)}


def agreement(reference: list[int], other: list[int]) -> tuple[bool, float]:
    if not reference:
        # Nothing matched (a filtered search often finds nothing): agreed if neither did.
        return not other, float(not other)
    same_top = bool(reference) and bool(other) and reference[0] == other[0]
    top = set(reference[:10])
    return same_top, len(top & set(other[:10])) / max(1, len(top))


def rescored(db, tantivy: TantivyKeywords, tokens: list[str], depth: int,
             filters: Filters | None = None) -> list[tuple[int, float]]:
    hits = tantivy.search(tokens, depth, filters=filters)
    return keyword_rescore.rescore(db, tokens, hits, tantivy.document_frequencies(tokens), K)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="a store folder")
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--source", default="source-07",
                        help="the source of the filtered searches (bench_scale's archives "
                             "spread documents over source-00 … source-99)")
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    questions = [q.question for q in read_squad(SETS).questions]
    questions = random.Random(1).sample(questions, args.questions)
    tokenizer = Tokenizer()
    tokenizer.load()

    db = connect(args.store / STORE_FILE, readonly=True)
    reader = StoreReader(db)
    tantivy = TantivyKeywords(args.store)
    with transaction(db, immediate=False):
        _, build_ms = timed(tantivy.catch_up, reader)
        documents, chunks = reader.counts()
        filters = Filters(sources=(args.source,))
        allowed = set(reader.chunk_ids_matching(filters))
    times: dict[str, list[float]] = {name: [] for name in (
        "fts5", "fts5_no_common", "tantivy", "tantivy_rescored", "tantivy_rescored_k",
        "fts5_idf", "tantivy_idf", "fts5_filtered", "tantivy_filtered",
        "tantivy_rescored_filtered")}
    agree: dict[str, list[tuple[bool, float]]] = {name: [] for name in (
        "fts5_no_common", "tantivy", "tantivy_rescored", "tantivy_rescored_k",
        "tantivy_filtered", "tantivy_rescored_filtered")}
    score_gaps: list[float] = []
    postings = []
    for number, question in enumerate(questions):
        tokens = tokenizer.tokens(question)
        with transaction(db, immediate=False):
            frequencies, fts5_idf_ms = timed(keywords.document_frequencies, db, tokens)
            _, tantivy_idf_ms = timed(tantivy.document_frequencies, tokens)
            idf = keywords.inverse_document_frequencies(chunks, frequencies, tokens)
            tokens, _ = keep_rarest(tokens, idf, 32)
            postings.append(sum(frequencies.get(t, 0) for t in set(tokens)))
            rare = [t for t in tokens if frequencies.get(t, 0) <= COMMON_SHARE * chunks]
            runs = {
                "fts5": (keywords.search_keywords, (db, tokens, K), {}),
                "fts5_no_common": (keywords.search_keywords, (db, rare, K), {}),
                "tantivy": (tantivy.search, (tokens, K), {}),
                "fts5_filtered": (keywords.search_keywords, (db, tokens, K),
                                  {"allowed": allowed}),
                "tantivy_filtered": (tantivy.search, (tokens, K), {"filters": filters}),
                "tantivy_rescored": (rescored, (db, tantivy, tokens,
                                                keyword_rescore.candidates(K)), {}),
                "tantivy_rescored_k": (rescored, (db, tantivy, tokens, K), {}),
                "tantivy_rescored_filtered": (rescored, (db, tantivy, tokens,
                                                         keyword_rescore.candidates(K)),
                                              {"filters": filters}),
            }
            order = list(runs)
            random.Random(number).shuffle(order)
            results = {}
            for name in order:
                function, positional, named = runs[name]
                results[name], elapsed = timed(function, *positional, **named)
                times[name].append(elapsed)
        times["fts5_idf"].append(fts5_idf_ms)
        times["tantivy_idf"].append(tantivy_idf_ms)
        ids = {name: [i for i, _ in hits] for name, hits in results.items()}
        for name in ("fts5_no_common", "tantivy", "tantivy_rescored", "tantivy_rescored_k"):
            agree[name].append(agreement(ids["fts5"], ids[name]))
        for name in ("tantivy_filtered", "tantivy_rescored_filtered"):
            agree[name].append(agreement(ids["fts5_filtered"], ids[name]))
        # How far the rescored scores are from FTS5's, chunk by chunk (both found it).
        reference = dict(results["fts5"])
        score_gaps.extend(abs(score - reference[i]) / max(abs(reference[i]), 1e-12)
                          for i, score in results["tantivy_rescored"] if i in reference)
    db.close()

    report = {"store": str(args.store), "chunks": chunks, "documents": documents,
              "questions": len(questions), "filtered_chunks": len(allowed),
              "tantivy_build_s": round(build_ms / 1000, 1),
              "tantivy_disk_mb": round(sum(p.stat().st_size for p in tantivy.path.rglob("*")
                                           if p.is_file()) / 1e6, 1),
              "postings_p50": int(statistics.median(postings)),
              "postings_p95": int(np.percentile(postings, 95)),
              "rescored_relative_score_gap_max": max(score_gaps, default=0.0)}
    for name, values in times.items():
        report[name] = percentiles(values)
    for name, pairs in agree.items():
        report[name]["same_top1_as_fts5"] = round(sum(a for a, _ in pairs) / len(pairs), 3)
        report[name]["top10_overlap_with_fts5"] = round(
            sum(o for _, o in pairs) / len(pairs), 3)
    print(f"{chunks:,} chunks, {len(questions)} questions; postings per question p50 "
          f"{report['postings_p50']:,}, p95 {report['postings_p95']:,}; tantivy index "
          f"{report['tantivy_disk_mb']} MB (catch-up/build {report['tantivy_build_s']} s)")
    print("| variant | p50 ms | p95 ms | same top 1 as FTS5 | top-10 overlap |")
    print("|---|---|---|---|---|")
    for name in times:
        row = report[name]
        print(f"| {name} | {row['p50_ms']} | {row['p95_ms']} | "
              f"{row.get('same_top1_as_fts5', '')} | {row.get('top10_overlap_with_fts5', '')} |")
    print(f"largest relative gap between a rescored score and FTS5's: "
          f"{report['rescored_relative_score_gap_max']:.2e}")
    print(f"\ncommand: {' '.join(sys.argv)}")
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
