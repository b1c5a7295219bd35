"""What it costs to ask an index built by one backend with another's question vectors.

    .venv/bin/python scripts/eval_backend_mix.py [FILE…] [--cache-dir .cache/models]
        [--json artifacts/eval_backend_mix.json]

For every pair (passages by torch fp32 or ONNX int8, questions by either) it runs the
vector-only evaluation of `qa eval` on the files (default: CMRC 2018 dev) and prints
recall@1/5 and MRR@10. Vectors come through the same embedding cache as `qa eval`, so
after one `qa eval` per backend nothing is embedded again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from script_setup import REPO as ROOT  # noqa: E402 - this checkout's qa first

from qa.cli import cached  # noqa: E402
from qa.config import config_from_mapping  # noqa: E402
from qa.embedder import create_embedder  # noqa: E402
from qa.evaluation import evaluate  # noqa: E402

CMRC = ROOT.parent / "shared" / "benchmarks" / "cmrc2018" / "cmrc2018_dev.json"


class Mixed:
    """Passages from one embedder, questions from another."""

    def __init__(self, passages, queries):
        self.name = passages.name
        self.dimension = passages.dimension
        self._passages, self._queries = passages, queries

    def embed_passages(self, texts, progress=None):
        return self._passages.embed_passages(texts, progress)

    def embed_queries(self, texts):
        return self._queries.embed_queries(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, default=[CMRC])
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "models")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    base = config_from_mapping({"model": {"cache_dir": str(args.cache_dir)}})
    embedders = {}
    for label, backend in (("torch fp32", "torch"), ("onnx int8", "onnx")):
        config = dataclasses.replace(base, model=dataclasses.replace(
            base.model, backend=backend, precision="int8"))
        embedders[label] = cached(create_embedder(config.model), config)
    rows = []
    print("| passages by | questions by | recall@1 | recall@5 | mrr@10 |")
    print("|---|---|---|---|---|")
    for passages in embedders:
        for queries in embedders:
            mixed = Mixed(embedders[passages], embedders[queries])
            for result in evaluate(args.files, base, mixed, ("vector",)):
                row = {"passages": passages, "questions": queries, **result}
                rows.append(row)
                print(f"| {passages} | {queries} | {row['recall@1']:.4f} "
                      f"| {row['recall@5']:.4f} | {row['mrr@10']:.4f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
