"""Approximate vector search on real e5 vectors: recall@10 against exact search, speed, memory.

    .venv/bin/python scripts/bench_ann.py collect [--passages 60000] [--seconds 1800]
    .venv/bin/python scripts/bench_ann.py measure [--json artifacts/bench-ann.json]
    .venv/bin/python scripts/bench_ann.py speed --sizes 100000 200000 500000

`collect` embeds real text with the configured model (through the embedding cache, so a
second run only adds what is new): the chunks of the CMRC 2018 and DRCD paragraphs as
the indexer cuts them, then their sentences and clauses, then runs of two and three
consecutive sentences, until `--passages` texts or `--seconds` of embedding; and a
seeded sample of their questions. It writes artifacts/ann-vectors.npz. `measure`
searches those vectors exactly (the truth) and with each candidate index (FAISS
IVF-Flat, IVF-SQ8, HNSW, flat SQ8, and the index the engine would build,
`qa.index.vectors`; `--engine-only` for the engine's alone), one thread, one question
at a time as the server asks, and prints recall@10 against exact search, query
p50/p95, build/train time and memory per vector. Random vectors make every ANN look
bad; these are the model's own. `speed` times exact and approximate search by archive
size on random vectors (time only).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from script_setup import REPO as ROOT  # noqa: E402 - this checkout's qa first
from script_setup import SETS  # noqa: E402

VECTORS = ROOT / "artifacts" / "ann-vectors.npz"
_PIECES = re.compile(r"[^。！？；，\n]{8,}[。！？；，]?")


def real_texts(config, limit: int) -> tuple[list[str], list[str]]:
    """Passages (chunks first, then sentences and clauses, no repeats) and questions."""
    from qa.evaluation import read_squad
    from qa.ingest.chunker import chunk_document, embedding_text

    evalset = read_squad(SETS)
    passages: dict[str, None] = {}
    for document in evalset.documents:
        for chunk in chunk_document(document, config.chunking):
            passages[embedding_text(chunk, document.title, config.chunking)] = None
    for document in evalset.documents:
        for sentence in re.split(r"(?<=[。！？])", document.text):
            if len(sentence.strip()) >= 8:
                passages[sentence.strip()] = None
    for document in evalset.documents:
        for piece in _PIECES.findall(document.text):
            passages[piece.strip()] = None
    # Then runs of two and three consecutive sentences: passage-sized real text, for
    # archives larger than the sets' own chunks and sentences.
    for width in (2, 3):
        for document in evalset.documents:
            sentences = [s.strip() for s in re.split(r"(?<=[。！？])", document.text)
                         if len(s.strip()) >= 8]
            for start in range(len(sentences) - width + 1):
                passages["".join(sentences[start:start + width])] = None
    questions = [q.question for q in evalset.questions]
    return list(passages)[:limit], questions


def collect(args) -> int:
    from qa.cli import cached
    from qa.config import load_config
    from qa.embedder import create_embedder

    config = load_config(args.config)
    if os.environ.get("QA_MODEL_CACHE"):  # reuse a model folder and embedding cache
        config = config.replace(model=dataclasses.replace(
            config.model, cache_dir=Path(os.environ["QA_MODEL_CACHE"])))
    embedder = cached(create_embedder(config.model, threads=1), config)
    passages, questions = real_texts(config, args.passages)
    questions = random.Random(1).sample(questions, min(args.questions, len(questions)))
    print(f"{len(passages)} passages, {len(questions)} questions to embed", flush=True)
    query_vectors = embedder.embed_queries(questions)
    started, parts = time.perf_counter(), []
    for start in range(0, len(passages), 512):
        if time.perf_counter() - started > args.seconds:
            print(f"stopped after {args.seconds} s", flush=True)
            break
        parts.append(embedder.embed_passages(passages[start:start + 512]))
        print(f"{start + len(parts[-1])} passages ({embedder.embedded} embedded, "
              f"{embedder.reused} from the cache) {time.perf_counter() - started:.0f} s",
              flush=True)
    VECTORS.parent.mkdir(exist_ok=True)
    np.savez(VECTORS, passages=np.vstack(parts).astype(np.float32),
             queries=np.asarray(query_vectors, dtype=np.float32))
    print(f"wrote {VECTORS}")
    return 0


def timed_search(index, queries: np.ndarray, k: int, params=None) -> tuple[np.ndarray, list[float]]:
    """Ids of the top k for each query, one query at a time; and each query's ms."""
    found, times = np.zeros((len(queries), k), dtype=np.int64), []
    for row, query in enumerate(queries):
        started, cpu = time.perf_counter(), time.thread_time()
        _, ids = index.search(query.reshape(1, -1), k, params=params)
        times.append(((time.perf_counter() - started) * 1000, (time.thread_time() - cpu) * 1000))
        found[row] = ids[0]
    return found, times


def timing(times: list[tuple[float, float]]) -> dict[str, float]:
    """Wall p50/p95 and CPU p50 in ms (on a busy machine the CPU time is the steadier)."""
    wall, cpu = [t[0] for t in times], [t[1] for t in times]
    return {"p50_ms": round(statistics.median(wall), 2),
            "p95_ms": round(float(np.percentile(wall, 95)), 2),
            "cpu_p50_ms": round(statistics.median(cpu), 2)}


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k
                          for f, t in zip(found, truth, strict=True)]))


def rescored(found: np.ndarray, passages: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Candidates re-ranked by their exact inner product (as the engine does from the store)."""
    out = np.zeros_like(found)
    for row, (ids, query) in enumerate(zip(found, queries, strict=True)):
        valid = ids[ids >= 0]
        order = np.argsort(-(passages[valid] @ query))
        out[row, :len(valid)] = valid[order]
        out[row, len(valid):] = -1
    return out


def candidates(dimension: int, count: int) -> list[tuple[str, object, list[tuple[str, object]]]]:
    """(name, index factory, [(setting, search parameters)]) for each candidate."""
    import faiss

    from qa.index.vectors import list_count

    nlist = list_count(count)
    ip = faiss.METRIC_INNER_PRODUCT
    sq8 = faiss.ScalarQuantizer.QT_8bit
    probes = [(f"nprobe={nlist // share} (1/{share})",
               faiss.SearchParametersIVF(nprobe=nlist // share)) for share in (16, 8, 6, 4)]

    def hnsw(m, sq=False):
        def make():
            index = (faiss.IndexHNSWSQ(dimension, sq8, m, ip) if sq
                     else faiss.IndexHNSWFlat(dimension, m, ip))
            index.hnsw.efConstruction = 80
            return index
        return make

    def ivf(sq, lists=nlist):
        def make():
            quantizer = faiss.IndexFlatIP(dimension)
            index = (faiss.IndexIVFScalarQuantizer(quantizer, dimension, lists, sq8, ip) if sq
                     else faiss.IndexIVFFlat(quantizer, dimension, lists, ip))
            index.own_fields = True
            quantizer.this.disown()
            return index
        return make

    few = max(64, round(count ** 0.5))  # fewer, larger lists: the usual sqrt(n)
    efs = [(f"efSearch={e}", faiss.SearchParametersHNSW(efSearch=e)) for e in (32, 64, 128)]
    return [
        ("flat SQ8", lambda: faiss.IndexScalarQuantizer(dimension, sq8, ip), [("", None)]),
        (f"IVF{nlist},Flat", ivf(False), probes),
        (f"IVF{nlist},SQ8", ivf(True), probes),
        (f"IVF{few},SQ8", ivf(True, few), [
            (f"nprobe={few // share} (1/{share})", faiss.SearchParametersIVF(nprobe=few // share))
            for share in (6, 4, 3)]),
        ("HNSW32,Flat", hnsw(32), efs),
        ("HNSW32,SQ8", hnsw(32, sq=True), efs),
    ]


def cache_vectors(path: Path, dimension: int) -> np.ndarray:
    """Every vector of this model's size in an embedding cache (real e5 vectors of
    whatever was indexed, evaluated or asked with it: passages and questions)."""
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT vector FROM vectors WHERE length(vector) = ?",
                          (dimension * 4,)).fetchall()
    finally:
        db.close()
    return np.vstack([np.frombuffer(r[0], dtype=np.float32) for r in rows])


def measure(args) -> int:
    import faiss

    from qa.index.vectors import VectorIndex

    faiss.omp_set_num_threads(1)
    data = np.load(args.vectors)
    queries = data["queries"][: args.queries]
    pool = data["passages"]
    if args.cache_vectors:
        pool = np.vstack([pool, cache_vectors(args.cache_vectors, pool.shape[1])])
        # Each vector once (a cache holds the chunks `collect` embedded too).
        _, first = np.unique(pool.view(np.dtype((np.void, pool.shape[1] * 4))).ravel(),
                             return_index=True)
        pool = pool[np.sort(first)]
        # Without the questions themselves (a cache may hold them): a question finding
        # its own vector would flatter every index.
        pool = pool[(pool @ queries.T).max(axis=1) < 0.9999]
    rows = []
    for size in args.sizes or [len(pool)]:
        passages = np.ascontiguousarray(pool[:size])
        count, dimension = passages.shape
        exact = faiss.IndexFlatIP(dimension)
        exact.add(passages)
        truth, times = timed_search(exact, queries, 50)
        base = {"vectors": count, "queries": len(queries)}
        rows.append(base | {"index": "exact (flat)", "setting": "", "recall@10": 1.0,
                            **timing(times),
                            "build_s": 0.0, "bytes_per_vector": dimension * 4 + 8})
        print(json.dumps(rows[-1]), flush=True)
        for name, make, settings in ([] if args.engine_only
                                     else candidates(dimension, count)):
            started = time.perf_counter()
            index = make()
            index.train(passages)  # a flat or HNSW index trains its quantiser only
            index.add(passages)
            build = time.perf_counter() - started
            memory = len(faiss.serialize_index(index)) / count
            for setting, params in settings:
                found, times = timed_search(index, queries, 50, params)
                rows.append(base | {
                    "index": name, "setting": setting,
                    "recall@10": round(recall_at(found, truth), 4),
                    "recall@10_rescored": round(
                        recall_at(rescored(found, passages, queries), truth), 4),
                    **timing(times),
                    "build_s": round(build, 1), "bytes_per_vector": round(memory)})
                print(json.dumps(rows[-1]), flush=True)
        # The index the engine builds past index.ann_min_chunks, searched as it searches.
        started = time.perf_counter()
        engine_index = VectorIndex.build(dimension, count,
                                         lambda p=passages: [(list(range(len(p))), p)], 1)
        build = time.perf_counter() - started
        found, times = np.zeros((len(queries), 50), dtype=np.int64), []
        for row, query in enumerate(queries):
            started, cpu = time.perf_counter(), time.thread_time()
            hits = engine_index.search(query, 50)
            times.append(((time.perf_counter() - started) * 1000,
                          (time.thread_time() - cpu) * 1000))
            found[row, :len(hits)] = [i for i, _ in hits]
            found[row, len(hits):] = -1
        with tempfile.TemporaryDirectory() as folder:
            engine_index.save(Path(folder) / "v.faiss")
            memory = (Path(folder) / "v.faiss").stat().st_size / count
        rows.append(base | {"index": "engine (qa.index.vectors)", "setting": "default",
                            "recall@10": round(recall_at(found, truth), 4),
                            "recall@10_rescored": round(
                                recall_at(rescored(found, passages, queries), truth), 4),
                            **timing(times),
                            "build_s": round(build, 1), "bytes_per_vector": round(memory)})
        print(json.dumps(rows[-1]), flush=True)
    columns = ["vectors", "index", "setting", "recall@10", "recall@10_rescored", "p50_ms",
               "p95_ms", "cpu_p50_ms", "build_s", "bytes_per_vector"]
    print("\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    print(f"\ncommand: {' '.join(sys.argv)}\nmachine: {platform.processor() or platform.machine()},"
          f" {os.cpu_count()} cores, faiss {faiss.__version__}, 1 thread, top 50 per query;"
          " recall@10 is against exact search on the same vectors; 'rescored' re-ranks the"
          " 50 candidates by their exact inner product, as the engine does")
    args.json_out.parent.mkdir(exist_ok=True)
    args.json_out.write_text(json.dumps(rows, indent=2))
    return 0


def speed(args) -> int:
    """Query time of exact search and of the engine's approximate index by size, on random
    unit vectors (their time does not depend on the content; their recall would)."""
    import faiss

    from qa.index.vectors import VectorIndex

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = []
    for size in args.sizes:
        passages = rng.standard_normal((size, 384), dtype=np.float32)
        passages /= np.linalg.norm(passages, axis=1, keepdims=True)
        queries = passages[rng.choice(size, args.queries, replace=False)]
        exact = VectorIndex.build(384, size, lambda p=passages: [(list(range(len(p))), p)],
                                  size + 1)
        started = time.perf_counter()
        ann = VectorIndex.build(384, size, lambda p=passages: [(list(range(len(p))), p)], 1)
        build = time.perf_counter() - started
        del passages
        row = {"vectors": size}
        for name, index in (("exact", exact), ("approximate", ann)):
            times = []
            for query in queries:
                started, cpu = time.perf_counter(), time.thread_time()
                index.search(query, 50)
                times.append(((time.perf_counter() - started) * 1000,
                              (time.thread_time() - cpu) * 1000))
            row |= {f"{name}_{key}": value for key, value in timing(times).items()}
        row["approximate_build_s"] = round(build, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
        del exact, ann
    print(f"command: {' '.join(sys.argv)}; {os.cpu_count()} cores, 1 thread, top 50")
    args.json_out.parent.mkdir(exist_ok=True)
    args.json_out.write_text(json.dumps(rows, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config.yaml"))
    sub = parser.add_subparsers(dest="command", required=True)
    step = sub.add_parser("collect", help="embed real passages and questions")
    step.add_argument("--passages", type=int, default=80000)
    step.add_argument("--questions", type=int, default=1000)
    step.add_argument("--seconds", type=float, default=1800)
    step = sub.add_parser("measure", help="recall, speed and memory of each index kind")
    step.add_argument("--queries", type=int, default=1000)
    step.add_argument("--vectors", type=Path, default=VECTORS)
    step.add_argument("--cache-vectors", type=Path,
                      help="add every vector of this embedding cache to the passages")
    step.add_argument("--engine-only", action="store_true",
                      help="measure exact search and the engine's index only")
    step.add_argument("--sizes", type=int, nargs="*",
                      help="also measure on the first N passages (default: all)")
    step.add_argument("--json", dest="json_out", type=Path,
                      default=ROOT / "artifacts" / "bench-ann.json")
    step = sub.add_parser("speed", help="query time by size (random vectors, time only)")
    step.add_argument("--sizes", type=int, nargs="+", default=[100000, 200000, 500000])
    step.add_argument("--queries", type=int, default=300)
    step.add_argument("--json", dest="json_out", type=Path,
                      default=ROOT / "artifacts" / "bench-ann-speed.json")
    args = parser.parse_args()
    return {"collect": collect, "measure": measure, "speed": speed}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
