"""How far tantivy's document frequencies drift from the live counts after replacements,
and what counting the rare words exactly costs.

    .venv/bin/python scripts/bench_idf_drift.py drift [--chunks 30000] [--replaces 300]
    .venv/bin/python scripts/bench_idf_drift.py cost --store DIR/index/store-… [--questions 100]

`drift` builds a store of synthetic chunks (30 tokens each from a Zipf-like vocabulary of
3,000 words) in one commit, as a bulk build leaves one big segment, then replaces random
documents one commit each with new tokens, and compares every word's idf (FTS5's formula,
qa.index.milvus_bm25.idf) from the store's own FTS5 counts (exact) with the idf from
tantivy: the term dictionary alone (`doc_freq`, which counts deleted chunks until their
segment is merged) and as the engine now looks them up (words in up to
`EXACT_COUNT_MAX` chunks counted by a query that skips deleted ones).

`cost` times both lookups on an existing store's tantivy folder (opened read-only; copy a
shared archive's folder first), question by question, interleaved, for CMRC/DRCD
questions tokenised as the retriever does. Writes JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from script_setup import SETS, announce

from qa.config import config_from_mapping, resolve_paths
from qa.index import keywords, tantivy_keywords
from qa.index.engine import PutDocument
from qa.index.layout import IndexFolder
from qa.index.local_engine import LocalEngine, create_index
from qa.index.milvus_bm25 import idf
from qa.ingest.chunker import Chunk
from qa.ingest.document import Block, Document

DIMENSION = 8


def _document(rng: random.Random, vocabulary: list[str], weights: list[float],
              number: int, version: int) -> PutDocument:
    text = f"chunk {number} version {version}"
    document = Document(doc_id=f"d{number}", path="api", blocks=(Block(text),), title=None)
    chunk = Chunk(doc_id=document.doc_id, ordinal=0, text=text, section=None, paragraph=0,
                  paragraph_end=0, char_start=0, char_end=len(text))
    vector = np.full((1, DIMENSION), DIMENSION ** -0.5, dtype=np.float32)
    return PutDocument(document, [chunk], vector,
                       [rng.choices(vocabulary, weights, k=30)], "api")


def _errors(chunks: int, exact: dict[str, int], counted: dict[str, int]) -> dict[str, float]:
    errors = [abs(idf(chunks, min(counted.get(w, 0), chunks)) - idf(chunks, n))
              for w, n in exact.items()]
    return {"idf_error_mean": round(float(np.mean(errors)), 5),
            "idf_error_p95": round(float(np.percentile(errors, 95)), 5),
            "idf_error_max": round(float(max(errors)), 5),
            "words_off": sum(1 for w, n in exact.items() if counted.get(w, 0) != n),
            "extra_postings": sum(counted.get(w, 0) - n for w, n in exact.items())}


def drift(chunks: int, replaces: int, seed: int) -> dict:
    rng = random.Random(seed)
    vocabulary = [f"w{i}" for i in range(3000)]
    weights = [1 / (i + 1) for i in range(len(vocabulary))]
    with tempfile.TemporaryDirectory(prefix="qa-drift-") as folder:
        config = resolve_paths(config_from_mapping({
            "model": {"name": "fake-embedder"}, "index": {"keyword_backend": "tantivy"}}),
            Path(folder))
        with IndexFolder(config.index_dir).writer_lock():
            create_index(config, config.index_dir, DIMENSION)
        engine = LocalEngine(config)
        try:
            engine.commit([_document(rng, vocabulary, weights, i, 0) for i in range(chunks)])
            for version in range(1, replaces + 1):
                engine.commit([_document(rng, vocabulary, weights, rng.randrange(chunks),
                                         version)])
            with engine.snapshot() as snapshot:
                exact = keywords.document_frequencies(snapshot.db, vocabulary)
                index = snapshot.keyword_index
                searcher = index._opened().searcher()
                dictionary = {w: searcher.doc_freq("terms", w) for w in exact}
                looked_up = index.document_frequencies(list(exact))
                segments = searcher.num_segments
        finally:
            engine.close()
    return {"chunks": chunks, "replaces": replaces, "segments": segments,
            "term_dictionary": _errors(chunks, exact, dictionary),
            "exact_below": tantivy_keywords.EXACT_COUNT_MAX,
            "as_looked_up": _errors(chunks, exact, looked_up)}


def cost(store: Path, questions: int) -> dict:
    from qa.evaluation import read_squad
    from qa.tokenizer import Tokenizer

    index = tantivy_keywords.TantivyKeywords(store)
    searcher = index._opened().searcher()
    tokenizer = Tokenizer()
    asked = random.Random(1).sample([q.question for q in read_squad(SETS).questions],
                                    questions)
    limits = sorted({5_000, tantivy_keywords.EXACT_COUNT_MAX})
    times: dict[str, list[float]] = {"term_dictionary": []}
    times |= {f"exact_below_{limit}": [] for limit in limits}
    counted = 0
    # Two passes, the first unrecorded: a count reads the word's postings, which a
    # serving process has in the page cache and a first read would fetch from disk.
    for recorded in (False, True):
        for question in asked:
            tokens = tokenizer.tokens(question)
            started = time.perf_counter()
            {t: searcher.doc_freq("terms", t) for t in dict.fromkeys(tokens)}
            if recorded:
                times["term_dictionary"].append((time.perf_counter() - started) * 1000)
            for limit in limits:
                tantivy_keywords.EXACT_COUNT_MAX = limit
                started = time.perf_counter()
                index.document_frequencies(tokens)
                if recorded:
                    times[f"exact_below_{limit}"].append(
                        (time.perf_counter() - started) * 1000)
            if recorded:
                counted += sum(1 for t in dict.fromkeys(tokens)
                               if 0 < searcher.doc_freq("terms", t) <= limits[-1])
    row = {"store": str(store), "chunks": searcher.num_docs - 1, "questions": questions,
           "words_below_the_larger_limit_per_question": round(counted / questions, 1)}
    for name, values in times.items():
        row[f"{name}_p50_ms"] = round(statistics.median(values), 3)
        row[f"{name}_p95_ms"] = round(float(np.percentile(values, 95)), 3)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("drift", "cost"))
    parser.add_argument("--chunks", type=int, default=30000)
    parser.add_argument("--replaces", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", type=Path, help="cost: a store folder with keywords.tantivy")
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    announce()
    if args.what == "drift":
        row = drift(args.chunks, args.replaces, args.seed)
    else:
        if args.store is None:
            parser.error("cost needs --store")
        row = cost(args.store, args.questions)
    print(json.dumps(row, ensure_ascii=False, indent=2))
    print(f"\ncommand: {' '.join(sys.argv)}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(row, ensure_ascii=False, indent=2),
                                 encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
