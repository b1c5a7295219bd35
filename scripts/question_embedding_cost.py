"""What one text costs the ONNX int8 model, by length and session setting: CPU and wall
ms per `session.run` of a single row, for the settings a question or a fallback sentence
meets (intra-op threads 1 or 2, graph optimisation level, the memory arena), plus the
tokenizer's cost for the shipped questions. Each setting is its own session over the
same export, timed in turn, `--rounds` times.

    QA_MODEL_CACHE=… .venv/bin/python scripts/question_embedding_cost.py [--rounds 2] \
        [--lengths 3 8 16 24 32 48 64 96] [--runs 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime
import script_setup  # noqa: F401 - this checkout's qa first on sys.path
from script_setup import REPO, announce
from tokenizers import Tokenizer

from qa.config import load_config, with_model_cache_from_environment
from qa.embedder import SentenceTransformerEmbedder
from qa.onnx_embedder import FILES, ensure_onnx_export, export_folder

LEVELS = {"all": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
          "extended": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
          "basic": onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC}
# (name, intra-op threads, optimisation level, memory arena); the first is what
# qa.onnx_embedder makes with model.threads 1, the second with 0 on two cores.
SETTINGS = [("1 thread", 1, "all", True), ("2 threads", 2, "all", True),
            ("1 thread, basic graph", 1, "basic", True),
            ("1 thread, extended graph", 1, "extended", True),
            ("1 thread, no arena", 1, "all", False)]


def session(model: Path, threads: int, level: str, arena: bool):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = LEVELS[level]
    options.enable_cpu_mem_arena = arena
    return onnxruntime.InferenceSession(str(model), options,
                                        providers=["CPUExecutionProvider"])


def cost(run, ids: list[int], runs: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per run of one row of these token ids."""
    input_ids = np.array([ids], dtype=np.int64)
    feed = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
    for _ in range(3):
        run(None, feed)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(runs):
        run(None, feed)
    return (1000 * (time.process_time() - cpu) / runs,
            1000 * (time.perf_counter() - wall) / runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--lengths", type=int, nargs="+", default=[3, 8, 16, 24, 32, 48, 64, 96])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    announce()
    config = with_model_cache_from_environment(load_config(args.config)).model
    model_folder = Path(SentenceTransformerEmbedder._locate(config, None))
    folder = ensure_onnx_export(model_folder, export_folder(config.cache_dir, model_folder))
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    lines = (REPO / "benchmarks" / "shipped_dev_questions.jsonl").read_text(encoding="utf-8")
    questions = [json.loads(line)["question"] for line in lines.splitlines() if line.strip()]
    encoded = [tokenizer.encode(config.query_prompt + q).ids for q in questions]
    started = time.process_time()
    for question in questions:
        tokenizer.encode(config.query_prompt + question)
    tokenizer_ms = 1000 * (time.process_time() - started) / len(questions)
    print(f"{len(questions)} shipped questions: {statistics.median(map(len, encoded))} tokens "
          f"at the median (prompt included), {max(map(len, encoded))} at most; the "
          f"tokenizer {tokenizer_ms:.3f} ms CPU each")
    sessions = {name: session(folder / FILES[config.precision], *rest)
                for name, *rest in SETTINGS}
    results: dict[str, dict[int, list[tuple[float, float]]]] = {
        name: {n: [] for n in args.lengths} for name in sessions}
    for _ in range(args.rounds):
        for length in args.lengths:
            ids = [0] + [1000 + i for i in range(length - 2)] + [2]
            for name, timed in sessions.items():
                results[name][length].append(cost(timed.run, ids, args.runs))
    print(f"\nCPU / wall ms per run, one row (median of {args.rounds} rounds of {args.runs}); "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| tokens | " + " | ".join(sessions) + " |")
    print("|---" * (len(sessions) + 1) + "|")
    for length in args.lengths:
        cells = []
        for name in sessions:
            pairs = results[name][length]
            cells.append(f"{statistics.median(c for c, _ in pairs):.2f} / "
                         f"{statistics.median(w for _, w in pairs):.2f}")
        print(f"| {length} | " + " | ".join(cells) + " |")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({
            "command": sys.argv, "tokenizer_ms": tokenizer_ms,
            "results": {name: {str(n): v for n, v in by_length.items()}
                        for name, by_length in results.items()},
            "load_after": os.getloadavg()}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
