"""Calibrate the "confident" flag: on-topic questions should be confident, off-topic not.

On-topic questions are asked of the pool they were written about; off-topic ones
come from another set (Wikipedia questions asked of the news corpus, or DRCD
questions asked of the CMRC pool). For each question the best hybrid passage's
(cosine, idf coverage) is recorded, and every threshold pair of the grid is
scored: precision/recall of flagging the off-topic ones as not confident. The best
pair keeps 95% of on-topic questions confident and flags the most off-topic ones.

With --news, a third pool is built from the news set's articles (all files given):
on-topic = its questions, off-topic = CMRC/DRCD questions and the questions of
benchmarks/news/off_topic_questions.txt (things not in the archive). Its first file's
questions take part in choosing the thresholds; the other files' questions (and half of
the off-topic ones) are only reported, as held out.

    .venv/bin/python scripts/calibrate_confidence.py --json artifacts/confidence.json \
        --news benchmarks/news/news_dev.json benchmarks/news/news_heldout.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa.cli import cached, load_embedder
from qa.config import load_config
from qa.evaluation import read_squad
from qa.index.saved_index import build_index_from_documents, open_index
from qa.retriever import Retriever

BENCH = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks"
CMRC = [BENCH / "cmrc2018/cmrc2018_dev.json", BENCH / "cmrc2018/cmrc2018_trial.json"]
DRCD = [BENCH / "drcd/DRCD_dev.json"]
SHIPPED = Path(__file__).resolve().parent.parent / "benchmarks/shipped_dev_questions.jsonl"
OFF_NEWS = Path(__file__).resolve().parent.parent / "benchmarks/news/off_topic_questions.txt"


def features(retriever: Retriever, questions: list[str]) -> list[tuple[float, float]]:
    return [f[:2] for f in features_and_docs(retriever, questions)]


def features_and_docs(retriever: Retriever, questions: list[str]) -> list[tuple]:
    """(cosine, coverage, doc id) of each question's best hybrid passage."""
    vectors = retriever.embedder.embed_queries([retriever.embedding_text(q) for q in questions])
    out = []
    for text, vector in zip(questions, vectors, strict=True):
        query = retriever.prepare(text, vector=vector)
        best = retriever.rank(query, "hybrid", 1)[0]
        with retriever.engine.snapshot() as snapshot:
            chunk = snapshot.chunks([best.chunk_id])[best.chunk_id]
        out.append((*retriever.confidence_features(query, chunk, best), chunk.doc_id))
    return out


def sample(questions: list[str], n: int, seed: int = 7) -> list[str]:
    return random.Random(seed).sample(questions, min(n, len(questions)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--sample", type=int, default=400)
    parser.add_argument("--json", dest="json_out", type=Path)
    parser.add_argument("--news", nargs="+", type=Path, default=[],
                        help="news set files (SQuAD format); the first one is tuned on")
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

    held_out: set[str] = set()
    wrong_rank1: dict[str, list] = {}
    if args.news:
        news_setups(config, embedder, args, setups, held_out, wrong_rank1)

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
        scores = [score(pair, on, off) for name, (on, off) in setups.items()
                  if name not in held_out]
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
                  f"on-topic kept {kept:.3f}" + ("  (held out)" if name in held_out else ""))
            rows.append({"thresholds": label, "similarity": pair[0], "coverage": pair[1],
                         "setup": name, "precision": p, "recall": r, "on_topic_kept": kept,
                         "held_out": name in held_out})
        for name, wrong in wrong_rank1.items():
            flagged = sum(not (f[0] >= pair[0] or f[1] >= pair[1]) for f in wrong)
            print(f"{label:<8} {name}: {len(wrong)} wrong rank-1 answers, "
                  f"{flagged} of them flagged not confident")
            rows.append({"thresholds": label, "setup": name, "wrong_rank1": len(wrong),
                         "wrong_rank1_flagged": flagged})
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(rows, indent=2), "utf-8")
    return 0


def news_setups(config, embedder, args, setups, held_out, wrong_rank1) -> None:
    """The news pool: tuning and held-out setups (see the module docstring)."""
    news = read_squad(args.news)
    off = sample([q.question for q in read_squad(CMRC[:1] + DRCD).questions], args.sample)
    if OFF_NEWS.exists():
        off += [line.strip() for line in OFF_NEWS.read_text("utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    off = sample(off, len(off), seed=11)
    with tempfile.TemporaryDirectory() as folder:
        pool_config = config.replace(index_dir=Path(folder) / "index")
        build_index_from_documents(pool_config, embedder, news.documents, pool_config.index_dir)
        index = open_index(pool_config)
        retriever = Retriever(pool_config, index, embedder)
        off_features = features(retriever, off)
        half = len(off_features) // 2
        for n, path in enumerate(args.news):
            asked = [q for q in news.questions if q.file == path.name]
            found = features_and_docs(retriever, [q.question for q in asked])
            name = f"news {path.stem}"
            own_off = off_features[:half] if n == 0 else off_features[half:]
            setups[name] = ([f[:2] for f in found], own_off)
            wrong_rank1[name] = [f[:2] for f, q in zip(found, asked, strict=True)
                                 if f[2] != q.paragraph_id]
            if n > 0:
                held_out.add(name)
        index.close()


if __name__ == "__main__":
    sys.exit(main())
