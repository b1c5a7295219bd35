"""Compare the embedding backends side by side, interleaved, on CMRC chunks and questions.

    .venv/bin/python scripts/bench_embed.py [--passages 512] [--queries 60] [--rounds 4]
        [--cache-dir .cache/models] [--json artifacts/bench_embed.json]

Backends: torch fp32 with 2 threads and with 1, ONNX Runtime fp32 and int8 (2 threads),
and ONNX int8 with 1 thread. The passages (the product's chunks of CMRC 2018 dev
paragraphs, batch 32, similar lengths batched together) are split into `--rounds` parts;
every backend embeds each part in turn (A, B, C, … then the next part, the order rotated
each round), so a busy machine slows them all alike. Then single questions, again one
backend after the other per question. Prints passages/s (wall), CPU seconds per passage,
question ms p50/p95 and the cosine of each backend's vectors to torch fp32 (min/mean),
and writes them as JSON. Compare ratios: absolute figures depend on the machine's load.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from script_setup import REPO as ROOT  # noqa: E402 - this checkout's qa first

from qa.config import ModelConfig  # noqa: E402
from qa.evaluation import read_squad  # noqa: E402
from qa.ingest.chunker import chunk_document, embedding_text  # noqa: E402

CMRC = ROOT.parent / "shared" / "benchmarks" / "cmrc2018" / "cmrc2018_dev.json"


def load_texts(passages: int, queries: int) -> tuple[list[str], list[str]]:
    """The first `passages` chunks of CMRC dev as the indexer embeds them, and questions."""
    from qa.config import ChunkingConfig

    evalset = read_squad([CMRC])
    settings = ChunkingConfig()
    texts: list[str] = []
    for document in evalset.documents:
        texts.extend(embedding_text(c, None, settings) for c in chunk_document(document,
                                                                               settings))
        if len(texts) >= passages:
            break
    step = max(1, len(evalset.questions) // queries)
    return texts[:passages], [q.question for q in evalset.questions[::step][:queries]]


def make_backends(cache_dir: Path) -> dict[str, tuple[object, int | None]]:
    """name -> (embedder, torch threads to set before each call or None)."""
    from qa.embedder import SentenceTransformerEmbedder, create_embedder

    base = ModelConfig(cache_dir=cache_dir)
    torch_model = SentenceTransformerEmbedder(dataclasses.replace(base, backend="torch"),
                                              threads=2)
    return {
        "torch fp32, 2 threads": (torch_model, 2),
        "torch fp32, 1 thread": (torch_model, 1),
        "onnx fp32, 2 threads": (create_embedder(dataclasses.replace(
            base, backend="onnx", precision="fp32", threads=2)), None),
        "onnx int8, 2 threads": (create_embedder(dataclasses.replace(
            base, backend="onnx", precision="int8", threads=2)), None),
        "onnx int8, 1 thread": (create_embedder(dataclasses.replace(
            base, backend="onnx", precision="int8", threads=1)), None),
    }


def set_torch_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=512)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--cache-dir", type=Path, default=Path(
        os.environ.get("QA_MODEL_CACHE") or ROOT / ".cache" / "models"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    passages, questions = load_texts(args.passages, args.queries)
    backends = make_backends(args.cache_dir)
    names = list(backends)
    wall = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)
    vectors: dict[str, list[np.ndarray]] = {name: [] for name in names}
    parts = np.array_split(np.arange(len(passages)), args.rounds)
    for round_number, part in enumerate(parts):
        texts = [passages[i] for i in part]
        rotated = names[round_number % len(names):] + names[:round_number % len(names)]
        for name in rotated:
            embedder, threads = backends[name]
            set_torch_threads(threads)
            started, cpu_started = time.perf_counter(), time.process_time()
            vectors[name].append(embedder.embed_passages(texts))
            wall[name] += time.perf_counter() - started
            cpu[name] += time.process_time() - cpu_started
        print(f"round {round_number + 1}/{len(parts)} done", file=sys.stderr)

    query_ms: dict[str, list[float]] = {name: [] for name in names}
    query_cpu: dict[str, float] = dict.fromkeys(names, 0.0)
    for number, question in enumerate(questions):
        rotated = names[number % len(names):] + names[:number % len(names)]
        for name in rotated:
            embedder, threads = backends[name]
            set_torch_threads(threads)
            started, cpu_started = time.perf_counter(), time.process_time()
            embedder.embed_queries([question])
            query_ms[name].append((time.perf_counter() - started) * 1000)
            query_cpu[name] += time.process_time() - cpu_started

    reference = np.concatenate(vectors[names[0]])
    rows = []
    for name in names:
        cosine = (np.concatenate(vectors[name]) * reference).sum(axis=1)
        ms = sorted(query_ms[name])
        rows.append({
            "backend": name,
            "passages_per_s": len(passages) / wall[name],
            "vs_torch_2_threads": wall[names[0]] / wall[name],
            "cpu_s_per_passage": cpu[name] / len(passages),
            "query_ms_p50": statistics.median(ms),
            "query_ms_p95": ms[min(len(ms) - 1, int(0.95 * len(ms)))],
            "query_cpu_ms": query_cpu[name] / len(questions) * 1000,
            "cosine_min": float(cosine.min()),
            "cosine_mean": float(cosine.mean()),
        })
    header = ("| backend | passages/s | vs torch 2 thr | CPU s/passage | query ms p50 | p95 "
              "| query CPU ms | cosine to fp32 min / mean |")
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['passages_per_s']:.1f} | {r['vs_torch_2_threads']:.2f} "
              f"| {r['cpu_s_per_passage']:.4f} | {r['query_ms_p50']:.1f} "
              f"| {r['query_ms_p95']:.1f} | {r['query_cpu_ms']:.1f} "
              f"| {r['cosine_min']:.4f} / {r['cosine_mean']:.4f} |")
    load = os.getloadavg()
    print(f"{len(passages)} passages, {len(questions)} questions, {os.cpu_count()} cores, "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "passages": len(passages), "questions": len(questions), "rounds": args.rounds,
            "cores": os.cpu_count(), "load_average": load, "rows": rows,
        }, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
