"""Latency of each engine on the shipped corpus with a fake 384-dimensional embedder (so
only the index is timed): the index build, `rank()` per mode over 40 dev questions, and
each Snapshot call. Prints a table.

    PYTHONPATH=. .venv/bin/python scripts/engine_latency.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa.config import config_from_mapping, resolve_paths
from qa.index.saved_index import build_index, open_index
from qa.retriever import Retriever
from tests.fakes import FakeEmbedder

REPO = Path(__file__).resolve().parent.parent


def median_ms(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def time_engine(kind: str, folder: Path, embedder: FakeEmbedder,
                questions: list[str]) -> None:
    config = resolve_paths(config_from_mapping({
        "engine": kind, "model": {"name": "fake-embedder"},
        "keywords": {"english_bridge": False}}), folder / kind)
    started = time.perf_counter()
    build_index(config, embedder, REPO / "corpus", config.index_dir)
    print(f"| {kind} | index build, 130 chunks | {time.perf_counter() - started:.1f} s |")
    retriever = Retriever(config, open_index(config), embedder)
    prepared = [retriever.prepare(q) for q in questions]
    for mode in ("hybrid", "vector", "keyword"):
        times = [median_ms(lambda p=p, m=mode: retriever.rank(p, m, 5), 1) for p in prepared]
        print(f"| {kind} | rank(), {mode} | {statistics.median(times):.1f} ms |")
    first = prepared[0]
    with retriever.engine.snapshot() as snapshot:
        calls = {
            "vector_search top 50": lambda: snapshot.vector_search(first.vector, 50),
            "keyword_search top 50": lambda: snapshot.keyword_search(first.tokens, 50),
            "vectors of 50 ids": lambda: snapshot.vectors(list(range(1, 51))),
            "idf": lambda: snapshot.idf(first.tokens),
        }
        for name, call in calls.items():
            print(f"| {kind} | {name} | {median_ms(call, 20):.1f} ms |")
    retriever.engine.close()


def main() -> None:
    lines = (REPO / "benchmarks" / "shipped_dev_questions.jsonl").read_text(encoding="utf-8")
    questions = [json.loads(line)["question"] for line in lines.splitlines()][:40]
    print("| engine | what | median |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="qa-latency-") as folder:
        for kind in ("local", "milvus"):
            time_engine(kind, Path(folder), FakeEmbedder(dimension=384), questions)


if __name__ == "__main__":
    main()
