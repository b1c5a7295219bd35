"""Calibrate the "confident" flag: on-topic questions should be confident, off-topic not.

On-topic questions are asked of the pool they were written about; off-topic ones
come from another set (Wikipedia questions asked of the news corpus, or DRCD
questions asked of the CMRC pool). For each question the best hybrid passage's
(cosine, idf coverage) is recorded, and every threshold pair of the grid is
scored: precision/recall of flagging the off-topic ones as not confident. The best
pair keeps 95% of on-topic questions confident and flags the most off-topic ones.

    .venv/bin/python scripts/calibrate_confidence.py --json artifacts/confidence.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

from qa.cli import cached, load_embedder
from qa.config import load_config
from qa.evaluation import read_squad
from qa.index.saved_index import build_index_from_documents, open_index
from qa.retriever import Retriever

BENCH = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks"
CMRC = [BENCH / "cmrc2018/cmrc2018_dev.json", BENCH / "cmrc2018/cmrc2018_trial.json"]
DRCD = [BENCH / "drcd/DRCD_dev.json"]
SHIPPED = Path(__file__).resolve().parent.parent / "benchmarks/shipped_dev_questions.jsonl"


def features(retriever: Retriever, questions: list[str]) -> list[tuple[float, float]]:
    vectors = retriever.embedder.embed_queries([retriever.embedding_text(q) for q in questions])
    out = []
    for text, vector in zip(questions, vectors, strict=True):
        query = retriever.prepare(text, vector=vector)
        best = retriever.rank(query, "hybrid", 1)[0]
        with retriever.engine.snapshot() as snapshot:
            chunk = snapshot.chunks([best.chunk_id])[best.chunk_id]
        out.append(retriever.confidence_features(query, chunk, best))
    return out


def sample(questions: list[str], n: int, seed: int = 7) -> list[str]:
    return random.Random(seed).sample(questions, min(n, len(questions)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--sample", type=int, default=400)
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    config = load_config(args.config)
    embedder = cached(load_embedder(config), config)
    setups: dict[str, tuple[list, list]] = {}

    # Setup 1: the shipped news index; off-topic = Wikipedia questions.
    index = open_index(config)
    retriever = Retriever(config, index, embedder)
    shipped = [json.loads(line)["question"] for line in SHIPPED.read_text("utf-8").splitlines()]
    wiki = [q.question for q in read_squad(CMRC[:1] + DRCD).questions]
    setups["news pool"] = (features(retriever, shipped),
                           features(retriever, sample(wiki, args.sample)))
    index.close()

    # Setup 2: the CMRC pool; on-topic = CMRC questions, off-topic = DRCD questions.
    cmrc = read_squad(CMRC)
    with tempfile.TemporaryDirectory() as folder:
        pool_config = config.replace(index_dir=Path(folder) / "index")
        build_index_from_documents(pool_config, embedder, cmrc.documents, pool_config.index_dir)
        index = open_index(pool_config)
        retriever = Retriever(pool_config, index, embedder)
        drcd = [q.question for q in read_squad(DRCD).questions]
        setups["CMRC pool"] = (
            features(retriever, sample([q.question for q in cmrc.questions], args.sample)),
            features(retriever, sample(drcd, args.sample)),
        )
        index.close()

    grid = [(s / 100, c / 20) for s in range(80, 96) for c in range(0, 21)]

    def score(pair, on, off):
        s, c = pair
        confident = lambda f: f[0] >= s or f[1] >= c  # noqa: E731
        flagged_off = sum(not confident(f) for f in off)
        flagged_on = sum(not confident(f) for f in on)
        precision = flagged_off / (flagged_off + flagged_on) if flagged_off + flagged_on else 0
        recall = flagged_off / len(off)
        return precision, recall, 1 - flagged_on / len(on)

    def objective(pair):
        # Wrongly doubting a real question costs more than trusting an off-topic one
        # (its passages are listed either way): keep 95% of on-topic questions
        # confident in every setup, then flag as many off-topic ones as possible.
        scores = [score(pair, on, off) for on, off in setups.values()]
        kept = min(s[2] for s in scores)
        return (kept >= 0.95, min(s[1] for s in scores), kept)

    best = max(grid, key=objective)
    current = (config.retrieval.confident_similarity, config.retrieval.confident_coverage)
    print("precision/recall of flagging off-topic questions; on-topic kept = share of on-topic "
          "questions still confident")
    rows = []
    for label, pair in (("config", current), ("best", best)):
        for name, (on, off) in setups.items():
            p, r, kept = score(pair, on, off)
            print(f"{label:<8} similarity>={pair[0]:.2f} or coverage>={pair[1]:.2f}  "
                  f"{name:<10} on={len(on)} off={len(off)}  precision {p:.3f}  recall {r:.3f}  "
                  f"on-topic kept {kept:.3f}")
            rows.append({"thresholds": label, "similarity": pair[0], "coverage": pair[1],
                         "setup": name, "precision": p, "recall": r, "on_topic_kept": kept})
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(rows, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
