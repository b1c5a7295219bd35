"""`qa eval` on each engine, one after the other: local (FAISS + FTS5), Milvus Lite with our
own tokens (the default analyzer) and Milvus Lite with Milvus' jieba analyzer.

Prints one Markdown table (recall@1/5, MRR@10, latency per file, mode and engine) and the
seconds each engine took to index the pool and answer everything; `--json FILE` keeps it.
`--articles N` keeps the first N articles of each file (the machine is shared).

    QA_MODEL_CACHE=.cache/models .venv/bin/python scripts/compare_engines.py \\
        ../shared/benchmarks/drcd/DRCD_dev.json --articles 150 --json artifacts/engines.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from qa.cli import cached, load_config_defaults, load_embedder
from qa.config import load_config
from qa.evaluation import evaluate

ENGINES = {
    "local": {"engine": "local"},
    "milvus-lite (our tokens)": {"engine": "milvus", "analyzer": "tokens"},
    "milvus-lite (Milvus jieba)": {"engine": "milvus", "analyzer": "jieba"},
}


def subset(paths: list[Path], articles: int | None, folder: Path) -> list[Path]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--config", default=None)
    parser.add_argument("--articles", type=int, default=None)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    config = load_config(args.config) if args.config else load_config_defaults()
    if os.environ.get("QA_MODEL_CACHE"):
        config = config.replace(model=dataclasses.replace(
            config.model, cache_dir=Path(os.environ["QA_MODEL_CACHE"]).resolve()))
    embedder = cached(load_embedder(config), config)
    rows = []
    with tempfile.TemporaryDirectory(prefix="qa-engines-") as folder:
        paths = subset(args.files, args.articles, Path(folder))
        for name in args.engines.split(","):
            settings = ENGINES[name]
            engine_config = config.replace(engine=settings["engine"], milvus=dataclasses.replace(
                config.milvus, analyzer=settings.get("analyzer", "tokens")))
            started = time.perf_counter()
            results = evaluate(paths, engine_config, embedder)
            seconds = time.perf_counter() - started
            for row in results:
                rows.append({"engine": name, "seconds": round(seconds, 1), **row})
            print(f"{name}: {seconds:.1f} s", file=sys.stderr)
    columns = ["engine", "file", "mode", "questions", "recall@1", "recall@5", "mrr@10",
               "latency_ms_p50", "seconds"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(
            f"{row[c]:.3f}" if isinstance(row[c], float) and c in ("recall@1", "recall@5",
                                                                   "mrr@10") else str(row[c])
            for c in columns) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": rows}, ensure_ascii=False, indent=2),
                             encoding="utf-8")


if __name__ == "__main__":
    main()
