"""What the wire-copy collapse costs: grouping time, and `ask` with it on and off.

Uses the shipped corpus's chunks and, for `ask`, an index of them built with the
fake test embedder (the model's time is the same either way), asking the 80
shipped development questions in hybrid mode, on and off interleaved.

    .venv/bin/python scripts/bench_duplicates.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

from script_setup import REPO  # noqa: E402 - this checkout's qa first

from qa.config import config_from_mapping, load_config, resolve_paths  # noqa: E402
from qa.duplicates import group_duplicates  # noqa: E402
from qa.index.saved_index import build_index, open_index  # noqa: E402
from qa.ingest.chunker import chunk_document  # noqa: E402
from qa.ingest.loader import load_corpus  # noqa: E402
from qa.retriever import Retriever  # noqa: E402
from tests.fakes import FakeEmbedder  # noqa: E402


def median_ms(times: list[float]) -> str:
    times = sorted(times)
    return (f"p50 {statistics.median(times):.2f} ms, "
            f"p95 {times[int(len(times) * 0.95)]:.2f} ms")


def grouping(texts: list[str], rounds: int = 300) -> None:
    for count, limit in ((5, 5), (50, 5), (50, None)):
        times = []
        for r in range(rounds):
            start = (r * 7) % (len(texts) - count)
            sample = texts[start : start + count]
            started = time.perf_counter()
            group_duplicates(sample, 0.8, limit=limit)
            times.append((time.perf_counter() - started) * 1000)
        print(f"group_duplicates, {count} passages, limit {limit}: {median_ms(times)}")


def asking(questions: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        config = resolve_paths(config_from_mapping({
            "corpus_dir": str(REPO / "corpus"), "index_dir": str(base / "index"),
            "model": {"name": "fake-embedder", "cache_dir": str(base)},
            "keywords": {"english_bridge": False},
        }), base)
        embedder = FakeEmbedder()
        build_index(config, embedder, config.corpus_dir, config.index_dir)
        index = open_index(config)
        off_config = config.replace(
            retrieval=dataclasses.replace(config.retrieval, collapse_duplicates=False))
        retrievers = {"on": Retriever(config, index, embedder),
                      "off": Retriever(off_config, index, embedder)}
        times: dict[str, list[float]] = {"on": [], "off": []}
        for rep in range(3):
            order = ["on", "off"] if rep % 2 == 0 else ["off", "on"]
            for question in questions:
                for name in order:
                    started = time.perf_counter()
                    retrievers[name].ask(question, top_k=5, mode="hybrid")
                    times[name].append((time.perf_counter() - started) * 1000)
        index.close()
    for name, values in times.items():
        print(f"ask, fake embedder, collapse {name}: {median_ms(values)} over {len(values)}")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    config = load_config(REPO / "config.yaml")
    documents = load_corpus(REPO / "corpus").documents
    texts = [c.text for d in documents for c in chunk_document(d, config.chunking)]
    grouping(texts)
    lines = (REPO / "benchmarks" / "shipped_dev_questions.jsonl").read_text(encoding="utf-8")
    asking([json.loads(line)["question"] for line in lines.splitlines() if line.strip()])


if __name__ == "__main__":
    main()
