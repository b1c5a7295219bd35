"""`qa eval` on two or more engines, question by question: each question is asked of every
engine in every mode before the next one, so the engines are always compared on the same
questions, and a run stopped early (by `--seconds`, Ctrl-C or SIGTERM) still gives a paired
comparison on the questions done so far.

Engines: local (FAISS + FTS5), Milvus Lite with our own tokens (the default analyzer) and
Milvus Lite with Milvus' jieba analyzer. Prints one Markdown table (recall@1/5/10, MRR@10
per file, mode and engine, over the questions asked), the seconds each engine took to
index the pool and to answer, and whether the run covered every question.
`--rows FILE` appends one JSON line per question as it goes; `--summary FILE` prints the
table of such a file again; `--articles N` keeps the first N articles of each file.
`--shuffle SEED` asks the questions in a seeded random order
(a run stopped early is then a random sample of the set, not its first articles).

    QA_MODEL_CACHE=.cache/models .venv/bin/python scripts/compare_engines.py \\
        ../shared/benchmarks/drcd/DRCD_dev.json --engines local,milvus-lite \\
        --shuffle 11 --rows artifacts/engines-drcd.jsonl --json artifacts/engines-drcd.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

from script_setup import announce, with_embedder

from qa.cli import load_config_defaults
from qa.config import MODES, load_config
from qa.evaluation import CHUNK_DEPTH, metrics, paragraph_rank, read_squad
from qa.index.engines import discard_scratch, scratch_config
from qa.index.saved_index import build_index_from_documents, open_index
from qa.retriever import Retriever

ENGINES = {
    "local": {"engine": "local"},
    "milvus-lite": {"engine": "milvus", "analyzer": "tokens"},
    "milvus-lite-jieba": {"engine": "milvus", "analyzer": "jieba"},
}


def subset(paths: list[Path], articles: int | None, folder: Path) -> list[Path]:
    """The files cut to their first `articles` articles (all of them for None)."""
    if not articles:
        return paths
    kept = []
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["data"] = data["data"][:articles]
        target = folder / path.name
        target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        kept.append(target)
    return kept


def table(rows: list[dict], engines: list[str]) -> list[dict]:
    """Metrics per engine, file and mode over the questions in `rows`."""
    results = []
    files = list(dict.fromkeys(row["file"] for row in rows))
    for name in engines:
        for file in files:
            for mode in MODES:
                ranks = [row["ranks"][name][mode] for row in rows
                         if row["file"] == file and mode in row["ranks"].get(name, {})]
                if ranks:
                    results.append({"engine": name, "file": file, "mode": mode,
                                    "questions": len(ranks),
                                    **{k: round(v, 4) for k, v in metrics(ranks).items()}})
    return results


def disagreements(rows: list[dict], first: str, second: str) -> list[str]:
    """Per file and mode: questions only one of two engines gets right at rank 1 (the
    paired view: with a few hundred questions the recall@1 of each is noisier)."""
    lines = []
    for file in dict.fromkeys(row["file"] for row in rows):
        for mode in MODES:
            pairs = [(row["ranks"][first][mode] == 1, row["ranks"][second][mode] == 1)
                     for row in rows if row["file"] == file and second in row["ranks"]]
            only = [sum(a and not b for a, b in pairs), sum(b and not a for a, b in pairs)]
            lines.append(f"{file} {mode}: rank 1 only on {first} {only[0]}, only on "
                         f"{second} {only[1]}, of {len(pairs)}")
    return lines


def print_table(results: list[dict]) -> None:
    columns = ["engine", "file", "mode", "questions", "recall@1", "recall@5", "recall@10",
               "mrr@10"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in results:
        print("| " + " | ".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c])
                                for c in columns) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--config", default=None)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--articles", type=int, default=None,
                        help="keep the first N articles of each file")
    parser.add_argument("--shuffle", type=int, default=None, metavar="SEED")
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop asking after this long (the table covers what was asked)")
    parser.add_argument("--rows", type=Path, default=None, help="append per-question JSON lines")
    parser.add_argument("--summary", type=Path, default=None,
                        help="print the table of a --rows file and exit")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    names = args.engines.split(",")
    if args.summary:
        rows = [json.loads(line) for line in args.summary.read_text("utf-8").splitlines() if line]
        print_table(table(rows, names))
        if len(names) == 2:
            print("\n".join(disagreements(rows, *names)))
        return
    announce()
    config, embedder = with_embedder(
        load_config(args.config) if args.config else load_config_defaults())
    with tempfile.TemporaryDirectory(prefix="qa-subset-") as cut:
        evalset = read_squad(subset(args.files, args.articles, Path(cut)))
    order = list(range(len(evalset.questions)))
    if args.shuffle is not None:
        random.Random(args.shuffle).shuffle(order)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
    timing = {name: {"index_s": 0.0, "answer_s": 0.0} for name in names}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="qa-engines-") as folder:
        retrievers = {}
        try:
            for name in names:
                settings = ENGINES[name]
                engine_config = scratch_config(config.replace(
                    engine=settings["engine"], milvus=dataclasses.replace(
                        config.milvus, analyzer=settings.get("analyzer", "tokens"))),
                    Path(folder) / name)
                started = time.perf_counter()
                build_index_from_documents(engine_config, embedder, evalset.documents,
                                           engine_config.index_dir)
                retrievers[name] = (Retriever(engine_config, open_index(engine_config),
                                              embedder), engine_config)
                timing[name]["index_s"] = round(time.perf_counter() - started, 1)
                print(f"{name}: indexed in {timing[name]['index_s']} s", file=sys.stderr)
            texts = {i: next(iter(retrievers.values()))[0].validate_question(
                evalset.questions[i].question) for i in order}
            retriever = next(iter(retrievers.values()))[0]
            vectors = dict(zip(order, retriever.embedder.embed_queries(
                [retriever.embedding_text(texts[i]) for i in order]), strict=True))
            started_all = time.monotonic()
            out = args.rows.open("a", encoding="utf-8") if args.rows else None
            try:
                for done, i in enumerate(order, start=1):
                    if stop or (args.seconds and time.monotonic() - started_all > args.seconds):
                        break
                    question = evalset.questions[i]
                    row = {"question": i, "file": question.file, "ranks": {}}
                    for name, (engine_retriever, _) in retrievers.items():
                        started = time.perf_counter()
                        row["ranks"][name] = _ranks(engine_retriever, texts[i], vectors[i],
                                                    question.paragraph_id)
                        timing[name]["answer_s"] += time.perf_counter() - started
                    rows.append(row)
                    if out:
                        out.write(json.dumps(row, ensure_ascii=False) + "\n")
                        out.flush()
                    if done % 200 == 0:
                        print(f"{done}/{len(order)} questions", file=sys.stderr)
            except KeyboardInterrupt:
                stop.append("interrupted")
            finally:
                if out:
                    out.close()
        finally:
            for engine_retriever, engine_config in retrievers.values():
                engine_retriever.engine.close()
                discard_scratch(engine_config)
    complete = len(rows) == len(order)
    results = table(rows, names)
    print_table(results)
    if len(names) == 2:
        print("\n".join(disagreements(rows, *names)))
    for name in names:
        timing[name]["answer_s"] = round(timing[name]["answer_s"], 1)
        print(f"{name}: index {timing[name]['index_s']} s, answering "
              f"{timing[name]['answer_s']} s", file=sys.stderr)
    print(f"{len(rows)} of {len(order)} questions asked"
          + ("" if complete else f" (PARTIAL: {stop[0] if stop else 'time budget'})"),
          file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(
            {"command": sys.argv, "complete": complete, "asked": len(rows),
             "questions": len(order), "timing": timing, "results": results},
            ensure_ascii=False, indent=2), encoding="utf-8")


def _ranks(retriever: Retriever, text: str, vector, paragraph_id: str) -> dict[str, int | None]:
    """The rank of the question's paragraph in each mode (None beyond the top 10)."""
    ranks = {}
    with retriever.engine.snapshot() as snapshot:
        query = retriever.prepare(text, vector=vector, snapshot=snapshot)
    for mode in MODES:
        with retriever.engine.snapshot() as snapshot:
            ranked = retriever.rank(query, mode, CHUNK_DEPTH, snapshot)
            chunks = snapshot.chunks([c.chunk_id for c in ranked])
        ranks[mode] = paragraph_rank([chunks[c.chunk_id].doc_id for c in ranked], paragraph_id)
    return ranks


if __name__ == "__main__":
    main()
