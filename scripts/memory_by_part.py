"""Where a server process's memory goes: RSS and PSS after each step of building the app.

Does in one process what `qa serve` does before it listens, one step at a time (the
imports, opening the index, loading the model, the retriever with jieba's dictionary,
the Flask app), then asks questions through Flask's test client (`POST /api/ask`), and
reads /proc/self/smaps_rollup after each step: RSS, PSS, PSS anonymous (the process's
own heap: Python objects, FAISS, ONNX Runtime's buffers) and PSS of files (mapped files
and libraries), and last what glibc's malloc_trim gives back. Then groups the process's
mappings (/proc/self/smaps) by what they map and prints the largest, and says whether
torch was imported. A part's cost is the
difference between two rows; anonymous memory freed by a step may stay with the process.

    QA_MODEL_CACHE=… PYTHONPATH=CHECKOUT .venv/bin/python scripts/memory_by_part.py \
        --config C [--questions Q.jsonl] [-n 100] [--json artifacts/memory.json]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

from script_setup import REPO  # noqa: E402 - this checkout's qa first on sys.path

FIELDS = ("Rss", "Pss", "Pss_Anon", "Pss_File", "Private_Clean", "Private_Dirty")


def memory() -> dict[str, float]:
    """This process's smaps_rollup fields, in MB."""
    values: dict[str, float] = {}
    with open("/proc/self/smaps_rollup") as rollup:
        for line in rollup:
            name, _, rest = line.partition(":")
            if name in FIELDS:
                values[name] = round(int(rest.split()[0]) / 1024, 1)
    return values


def mappings(top: int) -> list[tuple[str, float, float]]:
    """The `top` largest groups of mappings by RSS: (what, RSS MB, private MB)."""
    rss: dict[str, int] = defaultdict(int)
    private: dict[str, int] = defaultdict(int)
    name = "?"
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()
            if "-" in head[0] and ":" not in head[0]:
                name = head[5] if len(head) > 5 else "[anonymous]"
                name = name if name.startswith("[") else Path(name).name
            elif head[0] == "Rss:":
                rss[name] += int(head[1])
            elif head[0] in ("Private_Clean:", "Private_Dirty:"):
                private[name] += int(head[1])
    ranked = sorted(rss, key=lambda key: -rss[key])[:top]
    return [(key, round(rss[key] / 1024, 1), round(private[key] / 1024, 1)) for key in ranked]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--questions", type=Path,
                        default=REPO / "benchmarks" / "shipped_dev_questions.jsonl")
    parser.add_argument("-n", "--requests", type=int, default=100)
    parser.add_argument("--top", type=int, default=12, help="mapping groups to print")
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; load average {os.getloadavg()}")
    rows: list[dict] = []

    def step(name: str, started: float) -> None:
        rows.append({"step": name, "seconds": round(time.perf_counter() - started, 2),
                     **memory()})

    started = time.perf_counter()
    step("python started", started)
    started = time.perf_counter()
    from qa.config import load_config, with_model_cache_from_environment
    from qa.embedder import create_embedder
    from qa.index.saved_index import open_index
    from qa.retriever import Retriever
    from qa.web import create_app
    step("imports (qa, flask, numpy, faiss, jieba)", started)

    config = with_model_cache_from_environment(load_config(args.config))
    started = time.perf_counter()
    engine = open_index(config)
    step("index opened (store, vectors, keyword index)", started)
    tokenizer_file = _onnx_tokenizer_file(config)
    if tokenizer_file is not None:
        # The model's tokenizer alone, then let go (the model loads its own just below).
        from tokenizers import Tokenizer

        started = time.perf_counter()
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        step("  the model's tokenizer.json alone (tokenizers)", started)
        del tokenizer
        started = time.perf_counter()
        step("  ... released again", started)
    started = time.perf_counter()
    embedder = create_embedder(config.model)
    step("model loaded (tokenizer, ONNX session)", started)
    started = time.perf_counter()
    retriever = Retriever(config, engine, embedder)
    step("retriever (jieba's dictionary)", started)
    started = time.perf_counter()
    app = create_app(config, retriever)
    step("Flask app", started)

    questions = [json.loads(line)["question"] for line in
                 args.questions.read_text(encoding="utf-8").splitlines() if line.strip()]
    client = app.test_client()
    started = time.perf_counter()
    for i in range(args.requests):
        response = client.post("/api/ask", json={"question": questions[i % len(questions)],
                                                 "top_k": 5})
        assert response.status_code == 200, response.get_data(as_text=True)
        if i == 0:
            step("first question", started)
            started = time.perf_counter()
    step(f"after {args.requests} questions", started)
    # What of the heap is freed but kept by the allocator (not part of anything live).
    started = time.perf_counter()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    step("malloc_trim(0) (freed heap given back)", started)
    groups = mappings(args.top)
    torch = "torch" in sys.modules

    print(f"\n{len(questions)} questions from {args.questions}; config {args.config}\n")
    print("| step | seconds | RSS MB | PSS MB | PSS anon | PSS file | private dirty |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['step']} | {row['seconds']} | {row['Rss']} | {row['Pss']} | "
              f"{row['Pss_Anon']} | {row['Pss_File']} | {row['Private_Dirty']} |")
    print("\n| mapping | RSS MB | private MB |\n|---|---|---|")
    for name, rss, private in groups:
        print(f"| {name} | {rss} | {private} |")
    print(f"\ntorch imported: {torch}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(
            {"command": sys.argv, "steps": rows, "mappings": groups, "torch": torch,
             "code": str(Path(sys.modules["qa"].__file__).parent.parent)}, indent=1))
        print(f"wrote {args.json_out}")
    engine.close()
    return 0


def _onnx_tokenizer_file(config) -> Path | None:
    """The tokenizer.json the ONNX embedder will load, if it is the built-in model's."""
    from qa.embedder import builtin_model_folder
    from qa.onnx_embedder import export_folder

    if config.model.backend != "onnx":
        return None
    model = builtin_model_folder(config.model.cache_dir)
    path = export_folder(config.model.cache_dir, model) / "tokenizer.json"
    return path if path.is_file() else None


if __name__ == "__main__":
    sys.exit(main())
