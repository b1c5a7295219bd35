"""CPU time of one question with the real model, by question length: the embedding alone
and the whole ask, with the limits of config.yaml (model.max_query_chars,
retrieval.max_question_terms) and without them.

    QA_MODEL_CACHE=.cache/models python scripts/question_cost.py --repeat 5 --json cost.json

Prints a Markdown table (median process CPU seconds and wall seconds) and writes JSON.
Process CPU counts every thread torch uses, which is what a busy server pays.
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

import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa.config import config_from_mapping, resolve_paths
from qa.embedder import SentenceTransformerEmbedder
from qa.index.saved_index import build_index, open_index
from qa.retriever import Retriever

REPO = Path(__file__).resolve().parent.parent
UNLIMITED = 1_000_000


def question_of(chars: int) -> str:
    """A question of `chars` characters made of the corpus's own sentences."""
    text = "".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "corpus").glob("*.txt")))
    return "".join(text.split())[:chars]


def measure(action, repeat: int) -> tuple[float, float]:
    action()  # warm
    cpu, wall = [], []
    for _ in range(repeat):
        started_cpu, started = time.process_time(), time.perf_counter()
        action()
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return round(statistics.median(cpu), 3), round(statistics.median(wall), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    cache = Path(os.environ.get("QA_MODEL_CACHE") or REPO / ".cache" / "models")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        base = resolve_paths(config_from_mapping({
            "corpus_dir": str(REPO / "corpus"), "index_dir": str(Path(folder) / "index"),
            "model": {"cache_dir": str(cache)}}), Path(folder))
        embedder = SentenceTransformerEmbedder(base.model)
        build_index(base, embedder, base.corpus_dir, base.index_dir)
        engine = open_index(base)
        for limited in (True, False):
            config = base if limited else dataclasses.replace(
                base, model=dataclasses.replace(base.model, max_query_chars=UNLIMITED),
                retrieval=dataclasses.replace(base.retrieval, max_question_terms=UNLIMITED))
            model = embedder
            model._config = config.model  # the same loaded model, other limits
            retriever = Retriever(config, engine, model)
            for chars in (20, 200, 1000):
                question = question_of(chars)
                embed = measure(lambda q=question, m=model: m.embed_queries([q]), args.repeat)
                ask = measure(lambda q=question, r=retriever: r.ask(q), args.repeat)
                rows.append({"limits": "config" if limited else "off", "chars": chars,
                             "embed_cpu_s": embed[0], "embed_wall_s": embed[1],
                             "ask_cpu_s": ask[0], "ask_wall_s": ask[1]})
        engine.close()
    print("| limits | question chars | embed CPU s | ask CPU s | ask wall s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['limits']} | {row['chars']} | {row['embed_cpu_s']} | {row['ask_cpu_s']} "
              f"| {row['ask_wall_s']} |")
    if args.json:
        args.json.write_text(json.dumps({"repeat": args.repeat, "rows": rows}, indent=2),
                             encoding="utf-8")


if __name__ == "__main__":
    main()
