"""Score fusion variants offline from the candidate dumps of scripts/tune_fusion.py.

Each dump holds, per question, both components' scores for the union of the two
top-50 lists, plus the question's tokens and idf and every chunk's text. This
script adds per-candidate features (idf coverage of the chunk and of its best
sentence, exact numbers, title match), ranks the candidates with every variant and
prints recall@1 per file. Tuning files are named with --tune; the learned
combination is fitted on the tuning questions only and scored on all, so the rows
of the other files are held out.

    .venv/bin/python scripts/tune_fusion.py FILES... --dump artifacts/fusion_x.pkl
    .venv/bin/python scripts/fusion_features.py artifacts/fusion_*.pkl \\
        --tune cmrc2018_trial.json news_dev.json --json artifacts/fusion_variants.json
    .venv/bin/python scripts/fusion_features.py --table artifacts/fusion_variants.json
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import sys
import time
from pathlib import Path

import numpy as np
import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa import fusion
from qa.evaluation import metrics, paragraph_rank
from qa.normalize import fold
from qa.tokenizer import Tokenizer

SENTENCE_END = re.compile(r"(?<=[。！？；!?;\n])")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Eval documents carry no title (read_squad), so there is no title-match feature.
FEATURES = ("dcos", "kn", "cov", "sent_cov", "num", "doc_cov")


def load(paths: list[Path]):
    """(question records, chunk -> doc id, chunk -> text) of several dumps."""
    questions, doc_of, texts = [], {}, {}
    for n, path in enumerate(paths):
        rows, docs, extras, chunk_texts = pickle.loads(path.read_bytes())
        # Chunk ids restart in every dump: key them by (dump, id).
        doc_of.update({(n, i): d for i, d in docs.items()})
        texts.update({(n, i): t for i, t in chunk_texts.items()})
        for (file, gold, v, k, coverage), extra in zip(rows, extras, strict=True):
            questions.append({"file": file, "gold": gold, "coverage": coverage,
                              "v": {(n, i): s for i, s in v.items()},
                              "k": {(n, i): s for i, s in k.items()}, **extra})
    return questions, doc_of, texts


class ChunkFacts:
    """Tokens of each chunk, of its sentences and of its whole document, computed once."""

    def __init__(self, texts: dict, doc_of: dict, tokenizer: Tokenizer):
        self.texts, self.doc_of, self.tokenizer, self.cache = texts, doc_of, tokenizer, {}
        self.chunks_of: dict = {}
        for chunk, doc in doc_of.items():
            self.chunks_of.setdefault((chunk[0], doc), []).append(chunk)
        self.doc_cache: dict = {}

    def get(self, chunk):
        if chunk not in self.cache:
            text = self.texts[chunk]
            sentences = [s for s in SENTENCE_END.split(text) if s.strip()]
            self.cache[chunk] = (
                set(self.tokenizer.tokens(text)),
                [set(self.tokenizer.tokens(s)) for s in sentences],
                self.document_tokens(chunk),
                set(NUMBER.findall(fold(text))),
            )
        return self.cache[chunk]

    def document_tokens(self, chunk) -> set:
        key = (chunk[0], self.doc_of[chunk])
        if key not in self.doc_cache:
            self.doc_cache[key] = set(self.tokenizer.tokens(
                "\n".join(self.texts[c] for c in self.chunks_of[key])))
        return self.doc_cache[key]


def features(question, facts: ChunkFacts) -> tuple[list, np.ndarray]:
    """Candidate ids and their feature matrix (columns: FEATURES)."""
    ids = sorted(set(question["v"]) | set(question["k"]))
    v = np.array([question["v"].get(i, 0.0) for i in ids])
    k = np.array([question["k"].get(i, 0.0) for i in ids])
    idf = question["idf"]
    total = sum(idf.values()) or 1.0
    numbers = set(NUMBER.findall(fold(question["question"])))
    rows = []
    for i, vi, ki in zip(ids, v, k, strict=True):
        tokens, sentences, document, chunk_numbers = facts.get(i)
        cov = sum(w for t, w in idf.items() if t in tokens) / total
        sent = max((sum(w for t, w in idf.items() if t in s) / total for s in sentences),
                   default=0.0)
        num = len(numbers & chunk_numbers) / len(numbers) if numbers else 0.0
        doc = sum(w for t, w in idf.items() if t in document) / total
        rows.append((vi - v.max(), ki / k.max() if k.max() > 0 else 0.0, cov, sent, num, doc))
    return ids, np.array(rows)


def ranks_of(questions, doc_of, order_fn) -> dict[str, list]:
    out: dict[str, list] = {}
    for q in questions:
        out.setdefault(q["file"], []).append(
            paragraph_rank([doc_of[i] for i in order_fn(q)], q["gold"]))
    return out


def by_score(ids, scores):
    return [ids[j] for j in sorted(range(len(ids)), key=lambda j: (-scores[j], ids[j]))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dumps", nargs="*", type=Path)
    parser.add_argument("--table", type=Path, help="print a --json result as a Markdown table")
    parser.add_argument("--tune", nargs="+", default=[], help="file names fitted on")
    parser.add_argument("--report", nargs="+", help="file names to print (default: all); "
                        "leave held-out files out while tuning")
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    if args.table:
        return print_table(json.loads(args.table.read_text("utf-8")))
    started = time.time()
    questions, doc_of, texts = load(args.dumps)
    tokenizer = Tokenizer()
    facts = ChunkFacts(texts, doc_of, tokenizer)
    prepared = [(q, *features(q, facts)) for q in questions]
    print(f"features of {len(questions)} questions in {time.time() - started:.0f} s",
          file=sys.stderr)
    variants = {}

    def product(q, ids, f):
        w = 0.6 - 0.35 * q["coverage"]
        return [c.chunk_id for c in fusion.blend(q["v"], q["k"], w)]

    variants["product: min-max, adaptive 0.25-0.6"] = product
    variants["keyword only"] = lambda q, ids, f: [c.chunk_id for c in
                                                  fusion.single(q["v"], q["k"], "keyword")]
    variants["vector only"] = lambda q, ids, f: [c.chunk_id for c in
                                                 fusion.single(q["v"], q["k"], "vector")]
    for scale in (0.05, 0.1, 0.2, 0.3):
        for w in (0.3, 0.5):
            variants[f"fixed cos scale s={scale} w={w}"] = (
                lambda q, ids, f, s=scale, w=w: by_score(ids, w * f[:, 0] / s + (1 - w) * f[:, 1]))
    for scale in (0.05, 0.1):
        for w in (0.3, 0.5):
            # Neither score rescaled per question: cosine on a fixed scale, BM25 over
            # the question's best possible (the sum of its words' idf: each word once
            # in a passage of average length).
            variants[f"cos scale s={scale} w={w}, BM25 / best possible"] = (
                lambda q, ids, f, s=scale, w=w: by_score(ids, _absolute_scores(q, ids, s, w)))
    for floor in (0.08, 0.1, 0.12, 0.15, 0.2):
        variants[f"product, cosine range floor {floor}"] = (
            lambda q, ids, f, floor=floor: by_score(ids, _floored_scores(q, ids, f, floor)))
    for scale in (0.1, 0.15):
        variants[f"adaptive weight, fixed cos scale {scale}"] = (
            lambda q, ids, f, s=scale: by_score(ids, _fixed_scores(q, f, s)))
    for floor in (0.02, 0.05):
        def zscore(q, ids, f, floor=floor):
            v = f[:, 0]
            z = (v - v.mean()) / max(v.std(), floor)
            kz = (f[:, 1] - f[:, 1].mean()) / max(f[:, 1].std(), 0.05)
            return by_score(ids, 0.4 * z + 0.6 * kz)
        variants[f"z-scores, cosine spread floor {floor}"] = zscore
    for name, col in (("coverage", 2), ("best sentence", 3), ("document coverage", 5)):
        for extra in (0.2, 0.5):
            variants[f"product + {extra} x {name}"] = (
                lambda q, ids, f, col=col, extra=extra: by_score(
                    ids, _product_scores(q, ids) + extra * f[:, col]))

    tune = [(q, ids, f) for q, ids, f in prepared if q["file"] in args.tune]
    if tune:
        from sklearn.linear_model import LogisticRegression
        x = np.vstack([f for _, _, f in tune])
        y = np.concatenate([[doc_of[i] == q["gold"] for i in ids] for q, ids, _ in tune])
        model = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
        print("learned weights: " + ", ".join(f"{n} {w:+.2f}" for n, w in
                                              zip(FEATURES, model.coef_[0], strict=True)),
              file=sys.stderr)
        variants["learned (logistic, tuned on --tune files)"] = (
            lambda q, ids, f: by_score(ids, f @ model.coef_[0]))

    files = sorted({q["file"] for q in questions})
    files = [f for f in files if not args.report or f in args.report]
    results = {}
    print(f"{'variant':<46}" + "".join(f"{f[:18]:>20}" for f in files))
    for name, fn in variants.items():
        per_file = ranks_of([q for q, _, _ in prepared if q["file"] in files], doc_of,
                            _with_features(prepared, fn))
        results[name] = {f: metrics(r) for f, r in per_file.items()}
        print(f"{name:<46}" + "".join(f"{results[name][f]['recall@1']:>20.4f}" for f in files))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"tuned_on": args.tune, "results": results},
                                            indent=2), "utf-8")
    return 0


def print_table(saved: dict) -> int:
    results = saved["results"]
    files = sorted({f for per_file in results.values() for f in per_file},
                   key=lambda f: (f not in saved["tuned_on"], f))
    print("| variant | " + " | ".join(
        f"{Path(f).stem}{' (tuning)' if f in saved['tuned_on'] else ''}" for f in files) + " |")
    print("|---" * (len(files) + 1) + "|")
    for name, per_file in results.items():
        print(f"| {name} | " + " | ".join(f"{per_file[f]['recall@1']:.3f}" if f in per_file
                                           else "" for f in files) + " |")
    return 0


def _product_scores(q, ids) -> np.ndarray:
    w = 0.6 - 0.35 * q["coverage"]
    scores = {c.chunk_id: c.score for c in fusion.blend(q["v"], q["k"], w)}
    return np.array([scores[i] for i in ids])


def _floored_scores(q, ids, f, floor) -> np.ndarray:
    """The product's blend with the cosine's min-max range at least `floor`."""
    w = 0.6 - 0.35 * q["coverage"]
    v = f[:, 0]
    spread = max(-v.min(), floor)
    return w * (v - v.min()) / spread + (1 - w) * f[:, 1]


def _absolute_scores(q, ids, scale, w) -> np.ndarray:
    best_possible = sum(q["idf"].values()) or 1.0
    v = np.array([q["v"].get(i, 0.0) for i in ids])
    k = np.array([q["k"].get(i, 0.0) for i in ids])
    return w * v / scale + (1 - w) * k / best_possible


def _fixed_scores(q, f, scale) -> np.ndarray:
    w = 0.6 - 0.35 * q["coverage"]
    return w * f[:, 0] / scale + (1 - w) * f[:, 1]


def _with_features(prepared, fn):
    lookup = {id(q): (ids, f) for q, ids, f in prepared}
    return lambda q: fn(q, *lookup[id(q)])


if __name__ == "__main__":
    sys.exit(main())
