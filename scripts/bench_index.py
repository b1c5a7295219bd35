"""End-to-end indexing throughput: the old path (torch fp32, serial) against the new
default (ONNX int8, tokenising in a worker process), side by side in one run.

    .venv/bin/python scripts/bench_index.py [--passages 2000] [--rounds 2]
        [--variants old,onnx-serial,new] [--resume-after 0] [--json artifacts/bench_index.json]

The corpus: CMRC 2018 dev and DRCD dev paragraphs cut at sentence ends into news-like
.txt files (a title, then paragraphs of ~130 characters, one chunk each), written once
into a temporary folder and split into `--rounds` parts. Each round, every variant
builds a fresh index of that round's part through the Indexer (`qa index` without the
embedding cache: a cache hit is not embedding), the order rotated each round so a busy
machine slows them all alike. The models are loaded before timing. Prints passages/s,
seconds by stage (load = read, parse and chunk; tokenize = jieba, or the wait for the
worker; embed; store = the commits), the ratio to the old path, and writes JSON.

`--resume-after N` then checks that a large build resumes: a child process builds an
index of the whole corpus in place (as `qa index` does, new default, no cache) and is
killed with SIGKILL once N passages are committed; a second build of the same corpus
finishes it. Prints how many passages were committed before the kill, how many the
second run embedded, how many of those had been committed already (redone: should be
0) and how many chunks are stored twice (should be 0).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from script_setup import REPO as ROOT  # noqa: E402 - this checkout's qa first

from qa.config import config_from_mapping  # noqa: E402
from qa.index.engines import fresh_engine  # noqa: E402
from qa.index.indexer import Indexer  # noqa: E402
from qa.index.layout import IndexFolder  # noqa: E402
from qa.index.saved_index import sync_index  # noqa: E402
from qa.index.store import STORE_FILE  # noqa: E402

BENCHMARKS = ROOT.parent / "shared" / "benchmarks"
SOURCES = [BENCHMARKS / "cmrc2018" / "cmrc2018_dev.json", BENCHMARKS / "drcd" / "DRCD_dev.json"]
# The variants: (label, backend, worker processes for tokenising).
VARIANTS = {
    "old": ("torch fp32, serial (old path)", "torch", 0),
    "onnx-serial": ("onnx int8, serial", "onnx", 0),
    "new": ("onnx int8, pipeline (new default)", "onnx", 1),
}
_SENTENCE_END = re.compile(r"(?<=[。！？!?])")


def news_paragraphs(context: str, target: int = 130) -> list[str]:
    """A context cut at sentence ends into paragraphs of about `target` characters."""
    paragraphs, current = [], ""
    for sentence in _SENTENCE_END.split(context.strip()):
        current += sentence
        if len(current) >= target - 20:
            paragraphs.append(current.strip())
            current = ""
    if len(current.strip()) >= 40:
        paragraphs.append(current.strip())
    return [p for p in paragraphs if 40 <= len(p) <= 220]


def write_corpus(folder: Path, passages: int, parts: int) -> list[tuple[Path, int]]:
    """`parts` corpus folders holding about `passages` paragraphs in all."""
    articles: list[tuple[str, list[str]]] = []
    for source in SOURCES:
        for entry in json.loads(source.read_text(encoding="utf-8"))["data"]:
            for paragraph in entry["paragraphs"]:
                pieces = news_paragraphs(paragraph["context"])
                if pieces:
                    articles.append((entry.get("title") or "新闻", pieces))
    # Alternate the sources so every part mixes simplified and traditional text.
    half = len(articles) // 2
    mixed = [a for pair in zip(articles[:half], articles[half:], strict=False) for a in pair]
    folders = [(folder / f"part{n}", 0) for n in range(parts)]
    for path, _ in folders:
        path.mkdir(parents=True)
    written = 0
    counts = [0] * parts
    for number, (title, pieces) in enumerate(mixed):
        if written >= passages:
            break
        part = number % parts
        body = "\n\n".join(pieces)
        (folders[part][0] / f"news-{number:05}.txt").write_text(
            f"---\ntitle: {json.dumps(title, ensure_ascii=False)}\n---\n{body}\n",
            encoding="utf-8")
        written += len(pieces)
        counts[part] += len(pieces)
    return [(path, counts[n]) for n, (path, _) in enumerate(folders)]


def make_embedders(config, backends: set[str]) -> dict[str, object]:
    from qa.embedder import create_embedder

    return {b: create_embedder(dataclasses.replace(config.model, backend=b))
            for b in sorted(backends)}


def build(config, embedder, corpus: Path, index_dir: Path, workers: int):
    config = config.replace(index_dir=index_dir)
    started = time.perf_counter()
    with fresh_engine(config, embedder.dimension) as engine:
        indexer = Indexer(config, engine, lambda: embedder, token_workers=workers)
        report = indexer.sync(corpus)
    return report, time.perf_counter() - started


def stored_chunks(index_dir: Path) -> tuple[int, int]:
    """(chunks stored, (doc_id, ordinal) pairs stored more than once) in the live store."""
    store = IndexFolder(index_dir).current_store() if index_dir.is_dir() else None
    if store is None or not (store / STORE_FILE).is_file():
        return 0, 0
    db = sqlite3.connect(f"file:{store / STORE_FILE}?mode=ro", uri=True, timeout=30)
    try:
        total = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        twice = db.execute("SELECT count(*) FROM (SELECT 1 FROM chunks GROUP BY doc_id, "
                           "ordinal HAVING count(*) > 1)").fetchone()[0]
        return total, twice
    except sqlite3.OperationalError:  # the store is being created
        return 0, 0
    finally:
        db.close()


class _Counting:
    """Counts the passages the wrapped embedder embeds."""

    def __init__(self, inner):
        self.inner, self.name, self.dimension = inner, inner.name, inner.dimension
        self.passages = 0

    def embed_queries(self, texts):
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts, progress=None):
        self.passages += len(texts)
        return self.inner.embed_passages(texts, progress)


def _build_in_child(cache_dir: str, corpus: Path, index_dir: Path) -> None:
    from qa.embedder import create_embedder

    config = config_from_mapping({"model": {"cache_dir": cache_dir}})
    sync_index(config, lambda: create_embedder(config.model), corpus, index_dir)


def resume_check(config, embedder, corpus: Path, index_dir: Path, after: int) -> dict:
    """Kill a build once `after` passages are committed, then finish it; see the doc."""
    import multiprocessing

    child = multiprocessing.get_context("spawn").Process(
        target=_build_in_child, args=(str(config.model.cache_dir), corpus, index_dir))
    child.start()
    deadline = time.monotonic() + 1800
    while child.is_alive() and time.monotonic() < deadline:
        if stored_chunks(index_dir)[0] >= after:
            break
        time.sleep(0.2)
    if child.is_alive():
        os.kill(child.pid, signal.SIGKILL)
    child.join()
    committed, _ = stored_chunks(index_dir)
    counting = _Counting(embedder)
    started = time.perf_counter()
    report = sync_index(config, lambda: counting, corpus, index_dir)
    seconds = time.perf_counter() - started
    total, twice = stored_chunks(index_dir)
    result = {"killed_after": after, "committed_before_kill": committed,
              "embedded_on_resume": counting.passages,
              "redone": counting.passages - (total - committed), "stored": total,
              "stored_twice": twice, "resume_seconds": seconds,
              "unchanged_documents": report.unchanged}
    print(f"resume: {committed} passages committed before SIGKILL; the second run "
          f"embedded {counting.passages} ({result['redone']} of them committed already) "
          f"in {seconds:.1f} s; {total} stored, {twice} stored twice")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default="old,onnx-serial,new")
    parser.add_argument("--resume-after", type=int, default=0,
                        help="also kill a build after this many passages and resume it")
    parser.add_argument("--cache-dir", type=Path, default=Path(
        os.environ.get("QA_MODEL_CACHE") or ROOT / ".cache" / "models"))
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "bench_index.json")
    args = parser.parse_args()
    names = args.variants.split(",")
    config = config_from_mapping({"model": {"cache_dir": str(args.cache_dir)}})
    embedders = make_embedders(config, {VARIANTS[n][1] for n in names} | {"onnx"})
    totals = {n: {"passages": 0, "seconds": 0.0, "stages": {}} for n in names}
    resume = None
    with tempfile.TemporaryDirectory(prefix="qa-bench-index-") as tmp:
        parts = write_corpus(Path(tmp) / "corpus", args.passages, args.rounds)
        if args.resume_after:
            resume = resume_check(config.replace(index_dir=Path(tmp) / "resumed"),
                                  embedders["onnx"], Path(tmp) / "corpus",
                                  Path(tmp) / "resumed", args.resume_after)
        for round_number, (corpus, _count) in enumerate(parts):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                _, backend, workers = VARIANTS[name]
                index_dir = Path(tmp) / f"index-{name}-{round_number}"
                report, seconds = build(config, embedders[backend], corpus, index_dir,
                                        workers)
                total = totals[name]
                total["passages"] += report.passages
                total["seconds"] += seconds
                for stage, value in report.stages.items():
                    total["stages"][stage] = total["stages"].get(stage, 0.0) + value
                print(f"round {round_number + 1}/{len(parts)} {name}: {report.passages} "
                      f"passages in {seconds:.1f} s", file=sys.stderr, flush=True)
    rows = []
    base = totals[names[0]]
    for name in names:
        total = totals[name]
        rows.append({
            "variant": VARIANTS[name][0], "passages": total["passages"],
            "seconds": total["seconds"],
            "passages_per_s": total["passages"] / total["seconds"],
            "vs_first": (total["passages"] / total["seconds"])
            / (base["passages"] / base["seconds"]),
            "stages": total["stages"],
        })
    stages = ["load", "tokenize", "embed", "store"]
    print("| variant | passages/s | vs old | " + " | ".join(f"{s} s" for s in stages)
          + " | total s |")
    print("|---|---|---|" + "---|" * len(stages) + "---|")
    for r in rows:
        print(f"| {r['variant']} | {r['passages_per_s']:.1f} | {r['vs_first']:.2f} | "
              + " | ".join(f"{r['stages'].get(s, 0.0):.1f}" for s in stages)
              + f" | {r['seconds']:.1f} |")
    load = os.getloadavg()
    machine = (f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
               f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print(f"{rows[0]['passages']} passages per variant in {args.rounds} rounds; {machine}")
    print("command: " + " ".join([Path(sys.executable).name] + sys.argv))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "command": sys.argv, "machine": machine, "rounds": args.rounds, "rows": rows,
        "resume": resume,
    }, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
