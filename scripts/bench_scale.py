"""Search and build costs at scale, without the model: where the time goes per stage.

    .venv/bin/python scripts/bench_scale.py --sizes 10000 50000 [--questions 300] [--json out.json]
    .venv/bin/python scripts/bench_scale.py --sizes 1000000 --archive DIR --build-only
    .venv/bin/python scripts/bench_scale.py --sizes 1000000 --archive DIR [--as-is]
        [--keyword-backend fts5|tantivy] [--real-model]

Builds synthetic archives of about N chunks from CMRC 2018 and DRCD paragraphs (each
paragraph reused under new ids until N chunks are reached) through the real indexer,
with random unit vectors of the real model's dimension in place of the model (so the
figures exclude embedding, which `scripts/bench_embed.py` measures), then asks real
CMRC/DRCD questions and times each stage of a hybrid question: tokenising and idf,
vector search, keyword search, filling in missing scores, fetching the chunks; and the
same questions filtered to one of 100 sources (about 1% of the documents). Prints a
table and RSS; the vector recall of ANN is not measured here (random vectors would make
any ANN look bad: scripts/bench_ann.py measures it on real e5 vectors). Past the config's
`index.ann_min_chunks` the archive is searched through the approximate index, so its
times are the ANN's. `--keyword-backend` overrides the config's `index.keyword_backend`
(the first open of an archive with tantivy builds its index: `open_s`); `--real-model`
embeds each question with the configured model, so `ask` is the whole question.
With `--archive` the archives are kept and reused; a build stopped
midway resumes (each batch is committed), and `--as-is` asks one as far as it got.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from script_setup import REPO as ROOT  # noqa: E402 - this checkout's qa first
from script_setup import SETS  # noqa: E402

from qa.config import load_config  # noqa: E402
from qa.embedder import create_embedder  # noqa: E402
from qa.evaluation import read_squad  # noqa: E402
from qa.filters import Filters  # noqa: E402
from qa.index import keyword_catch_up  # noqa: E402
from qa.index.engines import writable_engine  # noqa: E402
from qa.index.indexer import Indexer  # noqa: E402
from qa.index.layout import IndexFolder  # noqa: E402
from qa.index.local_engine import LocalEngine  # noqa: E402
from qa.index.tantivy_keywords import TantivyKeywords  # noqa: E402
from qa.retriever import Retriever  # noqa: E402

DIMENSION = 384


class RandomVectors:
    """Unit vectors from a seeded generator, named like the configured model."""

    def __init__(self, name: str):
        self.name, self.dimension = name, DIMENSION
        self._random = np.random.default_rng(0)
        self.seconds = 0.0

    def embed_passages(self, texts, progress=None):
        started = time.perf_counter()
        vectors = self._random.standard_normal((len(texts), DIMENSION)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        self.seconds += time.perf_counter() - started
        return vectors

    def embed_queries(self, texts):
        return self.embed_passages(texts)


class TimedEngine:
    """Wraps a snapshot's searches to time each stage of a question."""

    STAGES = ("idf", "vector_search", "keyword_search", "vectors", "chunks")

    def __init__(self):
        self.times: dict[str, list[float]] = {stage: [] for stage in self.STAGES}

    def wrap(self, snapshot):
        for stage in self.STAGES:
            original = getattr(snapshot, stage)

            def timed(*args, _original=original, _stage=stage, **kwargs):
                started = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    self.times[_stage].append((time.perf_counter() - started) * 1000)

            setattr(snapshot, stage, timed)
        return snapshot


def rss_mb() -> float:
    """Resident memory now (not the peak: a reused archive may have loaded an older
    vector cache before switching index kinds)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(config, size: int, grow: bool = True) -> dict[str, float]:
    """Build (or finish building) an archive of about `size` chunks in config.index_dir,
    through the engine `qa index` writes with (qa.index.engines.writable_engine). Each
    batch of documents is committed on its own, so an interrupted build resumes where it
    stopped: copy and position are worked out from the documents stored. With `grow`
    False the archive is only looked at: no lock taken, no file written (it may be
    another's, read-only)."""
    if not grow:
        return _as_is(config)
    documents = read_squad(SETS).documents
    embedder = RandomVectors(config.model.name)
    # Build time adds up over interrupted and resumed runs: kept beside the archive after
    # every batch of documents.
    log = config.index_dir / "bench-build.json"
    catch_ups = _time_keyword_catch_ups()
    started = time.perf_counter()
    # Creates the archive if missing; builds a missing keyword index (tantivy) from the
    # store; saves the vector cache under the writer lock at the end, as `qa index` does.
    with writable_engine(config, lambda: embedder) as engine:
        first_open_s = time.perf_counter() - started
        indexer = Indexer(config, engine, lambda: embedder)
        total = json.loads(log.read_text())["build_s"] if log.exists() else 0.0
        while (status := engine.status())["chunks"] < size:
            started = time.perf_counter()
            copy, done = divmod(status["documents"], len(documents))
            batch = documents[done:]
            if status["documents"]:
                per_document = status["chunks"] / status["documents"]
                batch = batch[: max(1, math.ceil((size - status["chunks"]) / per_document))]
            # 100 sources, so that one source keeps about 1% of the documents.
            indexer.put_documents(
                replace(d, doc_id=f"{d.doc_id}-{copy}", source=f"source-{n % 100:02d}")
                for n, d in enumerate(batch, start=copy * len(documents) + done))
            total += time.perf_counter() - started
            log.write_text(json.dumps({"build_s": total}))
        # What the bulk writes left for the end of the block (the keyword index's last
        # catch-up) is build time too; saving the vector cache is not counted.
        started = time.perf_counter()
        engine.catch_up_keywords()
        total += time.perf_counter() - started
        log.write_text(json.dumps({"build_s": total}))
    row = _as_is(config)
    return row | {"first_open_s": round(first_open_s, 1), "build_s": round(total, 1),
                  "chunks_per_s": round(row["chunks"] / total, 1),
                  "keyword_catch_ups": catch_ups["count"],
                  "keyword_catch_up_s": round(catch_ups["seconds"], 1)}


_CATCH_UPS = {"count": 0, "seconds": 0.0}


def _time_keyword_catch_ups() -> dict[str, float]:
    """Count and time the tantivy catch-ups of this process from now on (this run's part
    of the build time; an interrupted and resumed build's earlier runs are not in it)."""
    _CATCH_UPS.update(count=0, seconds=0.0)
    if not getattr(TantivyKeywords.catch_up, "timed", False):
        original = TantivyKeywords.catch_up

        def timed(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                _CATCH_UPS["count"] += 1
                _CATCH_UPS["seconds"] += time.perf_counter() - started

        timed.timed = True  # type: ignore[attr-defined]
        TantivyKeywords.catch_up = timed  # type: ignore[method-assign]
    return _CATCH_UPS


def _as_is(config) -> dict[str, float]:
    """Counts and disk size of an archive, without writing to it."""
    engine = LocalEngine(config)
    status = engine.status()
    engine.close()
    store = IndexFolder(config.index_dir).require_store()
    disk = sum(p.stat().st_size for p in store.iterdir() if p.is_file())
    disk += keyword_index_mb(store) * 1e6
    log = config.index_dir / "bench-build.json"
    build_s = json.loads(log.read_text())["build_s"] if log.exists() else None
    return {"chunks": status["chunks"], "documents": status["documents"],
            "disk_mb": round(disk / 1e6, 1), "vector_index": status["vector_index"],
            "first_open_s": None, "build_s": build_s and round(build_s, 1),
            "chunks_per_s": build_s and round(status["chunks"] / build_s, 1)}


class TimedEmbedder:
    """Times the question's embedding (the real model's, or random vectors)."""

    def __init__(self, embedder):
        self.embedder, self.name = embedder, embedder.name
        self.dimension = getattr(embedder, "dimension", DIMENSION)
        self.times: list[float] = []

    def embed_queries(self, texts):
        started = time.perf_counter()
        try:
            return self.embedder.embed_queries(texts)
        finally:
            self.times.append((time.perf_counter() - started) * 1000)

    def embed_passages(self, texts, progress=None):
        return self.embedder.embed_passages(texts)


def keyword_index_mb(store: Path) -> float:
    """Disk size of a keyword index kept beside the store (tantivy), 0 if none."""
    folder = store / "keywords.tantivy"
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def ask(config, questions: list[str], filters=None, embedder=None) -> dict[str, float]:
    started = time.perf_counter()
    engine = LocalEngine(config)
    open_s = time.perf_counter() - started
    opened_rss = rss_mb()
    embedder = TimedEmbedder(embedder or RandomVectors(config.model.name))
    retriever = Retriever(config, engine, embedder)
    timer = TimedEngine()
    original = engine.snapshot

    def timed_snapshot():
        from contextlib import contextmanager

        @contextmanager
        def block():
            with original() as snapshot:
                yield timer.wrap(snapshot)

        return block()

    engine.snapshot = timed_snapshot  # type: ignore[method-assign]
    totals = []
    for question in questions:
        started = time.perf_counter()
        retriever.ask(question, top_k=5, mode="hybrid", **({"filters": filters} if filters else {}))
        totals.append((time.perf_counter() - started) * 1000)
    engine.close()
    row = {"ask_p50_ms": round(statistics.median(totals), 1),
           "ask_p95_ms": round(float(np.percentile(totals, 95)), 1),
           "open_s": round(open_s, 1),
           "rss_open_mb": round(opened_rss), "rss_after_mb": round(rss_mb()),
           "rss_peak_mb": round(peak_rss_mb())}
    timer.times["embed"] = embedder.times
    for stage, values in timer.times.items():
        if values:
            row[f"{stage}_p50_ms"] = round(statistics.median(values), 2)
            row[f"{stage}_p95_ms"] = round(float(np.percentile(values, 95)), 2)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config.yaml"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000])
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--json", dest="json_out", type=Path)
    parser.add_argument("--archive", type=Path,
                        help="keep the archives in this folder (<folder>/<size>) and reuse "
                             "them; an interrupted build resumes (default: temporary)")
    parser.add_argument("--build-only", action="store_true",
                        help="build (or resume) the archives, ask nothing")
    parser.add_argument("--as-is", action="store_true",
                        help="ask an --archive as far as it was built (an interrupted build)")
    parser.add_argument("--keyword-backend", choices=("fts5", "tantivy"),
                        help="override the config's index.keyword_backend")
    parser.add_argument("--catch-up-every", type=int,
                        help="a bulk build catches the tantivy index up every N commits "
                             "(default: qa.index.keyword_catch_up.KEYWORD_CATCH_UP_COMMITS; 1 "
                             "is how every commit did it before)")
    parser.add_argument("--real-model", action="store_true",
                        help="embed the questions with the configured model (the archive's "
                             "vectors stay random): the question's time includes embedding")
    parser.add_argument("--write-questions", type=Path,
                        help="only write the sampled questions to this file as JSON lines "
                             "(for bench_api.py --questions) and stop")
    args = parser.parse_args()
    if args.catch_up_every:
        keyword_catch_up.KEYWORD_CATCH_UP_COMMITS = args.catch_up_every
    questions = [q.question for q in read_squad(SETS).questions]
    questions = random.Random(1).sample(questions, args.questions)
    if args.write_questions:
        args.write_questions.parent.mkdir(parents=True, exist_ok=True)
        args.write_questions.write_text("".join(
            json.dumps({"question": q}, ensure_ascii=False) + "\n" for q in questions),
            encoding="utf-8")
        print(f"wrote {len(questions)} questions to {args.write_questions}")
        return 0
    rows = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="qa-scale-") as temporary:
            folder = (args.archive or Path(temporary)) / str(size)
            config = load_config(args.config).replace(index_dir=folder / "index")
            if args.keyword_backend:
                config = config.replace(index=replace(
                    config.index, keyword_backend=args.keyword_backend))
            embedder = create_embedder(config.model) if args.real_model else None
            row = {"target": size, "keyword_backend": config.index.keyword_backend,
                   "catch_up_every": keyword_catch_up.KEYWORD_CATCH_UP_COMMITS,
                   "real_model": args.real_model} | build(config, size, grow=not args.as_is)
            if not args.build_only:
                row |= ask(config, questions, embedder=embedder)
                row["keyword_index_mb"] = round(
                    keyword_index_mb(IndexFolder(config.index_dir).require_store()), 1)
                filtered = ask(config, questions, Filters(sources=("source-07",)), embedder)
                row["filtered_1pct_p50_ms"] = filtered["ask_p50_ms"]
                row["filtered_1pct_p95_ms"] = filtered["ask_p95_ms"]
                row["filtered_keyword_p50_ms"] = filtered.get("keyword_search_p50_ms")
                row["filtered_keyword_p95_ms"] = filtered.get("keyword_search_p95_ms")
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    print(f"\ncommand: {' '.join(sys.argv)}")
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
