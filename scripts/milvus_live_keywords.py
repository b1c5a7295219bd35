"""Keyword scores on Milvus Lite after live writes: Milvus' own BM25 (the engine before it
kept statistics) against the side store's exact BM25, side by side on one index, with the
local engine (FTS5) as the reference.

A pool of SQuAD-format paragraphs is indexed without `--live N` of them (seeded sample);
those N are then added one commit each through the engine's write path, as the write API
adds them (Milvus Lite puts each commit in a new segment). The questions about the added
paragraphs, and `--questions` seeded others, are asked in keyword and hybrid mode of: the
local engine, Milvus scored by Milvus (`milvus-own`) and Milvus scored from the side store
(`milvus-exact`), the two Milvus variants alternating question by question on the same
index. Prints recall@1 per group and mode, the median time of `rank()` to depth 50, how
often each Milvus variant's keyword top 50 is the local engine's (same texts, same order),
and the build: seconds, seconds per added paragraph, side-store size.

    PYTHONPATH=. QA_MODEL_CACHE=.cache/models .venv/bin/python scripts/milvus_live_keywords.py \\
        ../shared/benchmarks/cmrc2018/cmrc2018_dev.json --live 40 --questions 300 \\
        --json artifacts/live-keywords.json

Run from a checkout of the engine before its statistics, only the `milvus-own` variant is
measured (its build time and side-store size are what that engine wrote).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from script_setup import announce, with_embedder

from qa.cli import load_config_defaults
from qa.evaluation import CHUNK_DEPTH, paragraph_ranking, read_squad
from qa.index.engines import discard_scratch, scratch_config, writable_engine
from qa.index.indexer import Indexer
from qa.index.saved_index import build_index_from_documents, open_index
from qa.retriever import Retriever

MODES = ("keyword", "hybrid")


def build(config, embedder, built, live) -> dict:
    """Index `built`, then add `live` one commit each; seconds of both."""
    started = time.perf_counter()
    build_index_from_documents(config, embedder, built, config.index_dir)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    with writable_engine(config, None) as engine:
        indexer = Indexer(config, engine, lambda: embedder)
        for document in live:
            indexer.put_document(document)
    return {"build_s": round(build_s, 1),
            "add_ms_per_document": round((time.perf_counter() - started) * 1000 / len(live), 1)}


def ask(retriever: Retriever, query, mode: str) -> tuple[list[str], float, list[str]]:
    """Documents in paragraph order, ms of rank() + chunks, keyword top-50 texts."""
    started = time.perf_counter()
    with retriever.engine.snapshot() as snapshot:
        ranked = retriever.rank(query, mode, CHUNK_DEPTH, snapshot)
        chunks = snapshot.chunks([c.chunk_id for c in ranked])
    ms = (time.perf_counter() - started) * 1000
    texts = []
    if mode == "keyword":
        texts = [chunks[c.chunk_id].text for c in ranked]
    return paragraph_ranking([chunks[c.chunk_id].doc_id for c in ranked]), ms, texts


def set_exact(retriever: Retriever, exact: bool) -> None:
    """Score keywords from the side store (exact) or by Milvus (the engine before)."""
    engine = retriever.engine
    engine._pair = dataclasses.replace(engine._pair, keeps_statistics=exact)


def side_store_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("side*.sqlite*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--live", type=int, default=40)
    parser.add_argument("--questions", type=int, default=300,
                        help="questions about paragraphs of the build (seeded sample)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    announce()
    config, embedder = with_embedder(load_config_defaults())
    evalset = read_squad(args.files)
    rng = random.Random(args.seed)
    live = rng.sample(evalset.documents, args.live)
    live_ids = {d.doc_id for d in live}
    built = [d for d in evalset.documents if d.doc_id not in live_ids]
    new = [q for q in evalset.questions if q.paragraph_id in live_ids]
    old = [q for q in evalset.questions if q.paragraph_id not in live_ids]
    old = rng.sample(old, min(args.questions, len(old)))
    report: dict = {"command": sys.argv, "paragraphs": len(evalset.documents),
                    "live": len(live), "questions": {"new": len(new), "old": len(old)},
                    "engines": {}, "results": []}
    with tempfile.TemporaryDirectory(prefix="qa-live-") as folder:
        retrievers = {}
        try:
            for kind in ("local", "milvus"):
                engine_config = scratch_config(config.replace(engine=kind),
                                               Path(folder) / kind)
                report["engines"][kind] = build(engine_config, embedder, built, live)
                retrievers[kind] = (Retriever(engine_config, open_index(engine_config),
                                              embedder), engine_config)
                print(f"{kind}: {report['engines'][kind]}", file=sys.stderr)
            milvus = retrievers["milvus"][0]
            variants = ["milvus-exact", "milvus-own"]
            if not hasattr(milvus.engine._pair, "keeps_statistics"):
                variants = ["milvus-own"]  # the engine before statistics
            local = retrievers["local"][0]
            with local.engine.snapshot() as snapshot:
                chunk_count = snapshot.counts()[1]
            questions = [("new", q) for q in new] + [("old", q) for q in old]
            texts = [local.validate_question(q.question) for _, q in questions]
            vectors = embedder.embed_queries([local.embedding_text(t) for t in texts])
            rows = []
            for n, ((group, question), text, vector) in enumerate(
                    zip(questions, texts, vectors, strict=True)):
                row = {"group": group, "ranks": {}, "ms": {}, "same_top50": {}}
                reference: list[str] = []
                order = ["local", *(variants if n % 2 else variants[::-1])]
                for name in order:
                    retriever = local if name == "local" else milvus
                    if name != "local" and len(variants) == 2:
                        set_exact(retriever, name == "milvus-exact")
                    query = retriever.prepare(text, vector=vector)
                    for mode in MODES:
                        ranking, ms, top = ask(retriever, query, mode)
                        row["ranks"].setdefault(name, {})[mode] = (
                            ranking.index(question.paragraph_id) + 1
                            if question.paragraph_id in ranking else None)
                        row["ms"].setdefault(name, {})[mode] = ms
                        if mode == "keyword":
                            if name == "local":
                                reference = top
                            else:
                                row["same_top50"][name] = top == reference
                rows.append(row)
        finally:
            for retriever, engine_config in retrievers.values():
                retriever.engine.close()
                discard_scratch(engine_config)
        report["engines"]["milvus"]["side_store_mb"] = round(
            side_store_bytes(Path(folder) / "milvus") / 1e6, 1)
    report["chunks"] = chunk_count
    print(f"{len(built)} paragraphs built, {len(live)} added one by one, {chunk_count} chunks; "
          f"{len(new)} questions about added paragraphs, {len(old)} about built ones")
    print("| engine | asked about | mode | questions | recall@1 | rank() median ms "
          "| keyword top 50 = local's |")
    print("|---|---|---|---|---|---|---|")
    for name in ["local", *variants]:
        for group in ("new", "old"):
            mine = [r for r in rows if r["group"] == group]
            for mode in MODES:
                hits = sum(r["ranks"][name][mode] == 1 for r in mine)
                ms = statistics.median(r["ms"][name][mode] for r in mine) if mine else 0.0
                same = (f"{sum(r['same_top50'][name] for r in mine)} of {len(mine)}"
                        if name != "local" and mode == "keyword" else "")
                result = {"engine": name, "group": group, "mode": mode,
                          "questions": len(mine),
                          "recall_at_1": round(hits / len(mine), 3) if mine else None,
                          "median_ms": round(ms, 1), "same_top50": same}
                report["results"].append(result)
                print(f"| {name} | {'added' if group == 'new' else 'built'} | {mode} "
                      f"| {len(mine)} | {result['recall_at_1']} | {result['median_ms']} "
                      f"| {same} |")
    for kind, facts in report["engines"].items():
        print(f"{kind}: {facts}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
