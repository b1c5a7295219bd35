"""CPU time of one question against the shipped corpus with the real model, by question
length, with the keyword-term cap (retrieval.max_question_terms) on and off.

    QA_MODEL_CACHE=.cache/models python scripts/question_cost.py --repeat 5 --json cost.json

Prints a Markdown table (median process CPU seconds per ask) and writes JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from qa.config import config_from_mapping, resolve_paths
from qa.embedder import SentenceTransformerEmbedder
from qa.index.saved_index import build_index, open_index
from qa.retriever import Retriever

REPO = Path(__file__).resolve().parent.parent


def question_of(chars: int) -> str:
    """A question of about `chars` characters made of the corpus's own sentences."""
    text = "".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "corpus").glob("*.txt")))
    text = "".join(text.split())
    return text[:chars]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    cache = Path(os.environ.get("QA_MODEL_CACHE") or REPO / ".cache" / "models")
    with tempfile.TemporaryDirectory() as folder:
        config = resolve_paths(config_from_mapping({
            "corpus_dir": str(REPO / "corpus"), "index_dir": str(Path(folder) / "index"),
            "model": {"cache_dir": str(cache)}}), Path(folder))
        embedder = SentenceTransformerEmbedder(config.model)
        build_index(config, embedder, config.corpus_dir, config.index_dir)
        engine = open_index(config)
        rows = []
        for cap in (config.retrieval.max_question_terms, 100_000):
            capped = dataclasses.replace(config, retrieval=dataclasses.replace(
                config.retrieval, max_question_terms=cap))
            retriever = Retriever(capped, engine, embedder)
            for chars in (20, 200, 1000):
                question = question_of(chars)
                retriever.ask(question)  # warm
                cpu = []
                for _ in range(args.repeat):
                    started = time.process_time()
                    retriever.ask(question)
                    cpu.append(time.process_time() - started)
                rows.append({"max_question_terms": cap if cap < 100_000 else "off",
                             "chars": chars, "cpu_seconds_median": round(
                                 statistics.median(cpu), 3),
                             "cpu_seconds_max": round(max(cpu), 3)})
        engine.close()
    print("| max_question_terms | question chars | CPU s (median) | CPU s (max) |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['max_question_terms']} | {row['chars']} | {row['cpu_seconds_median']} "
              f"| {row['cpu_seconds_max']} |")
    if args.json:
        args.json.write_text(json.dumps({"repeat": args.repeat, "rows": rows}, indent=2),
                             encoding="utf-8")


if __name__ == "__main__":
    main()
