"""Score the wording features (qa.passage_features) as fusion variants, offline.

Reads the candidate dumps of scripts/tune_fusion.py. For each question the
product's blend ranks the candidates; the best `--depth` of them (the only ones a
re-ranker in the product would touch) get the features of qa.passage_features from
the text the dump holds (the chunk's title, section and text, as the product's
re-rank reads it) and the article's title, and are
re-ranked by the product's score plus a weighted feature. A listwise (softmax)
combination of the product's score and all features is fitted on the --tune files
only; the other files are held out. Prints recall@1 per file and can write JSON for
`scripts/fusion_features.py --table`.

    .venv/bin/python scripts/fusion_wording.py artifacts/fusion_*.pkl \\
        --tune cmrc2018_trial.json "news_dev_paragraphs (fusion_newspara)" \\
        "news_dev_paragraphs (fusion_newslook)" \\
        --json artifacts/fusion_wording.json
    .venv/bin/python scripts/fusion_features.py --table artifacts/fusion_wording.json
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import script_setup  # noqa: F401 - this checkout's qa first on sys.path
from scipy.optimize import minimize

from qa import fusion
from qa.evaluation import metrics, paragraph_rank
from qa.passage_features import FEATURE_NAMES, passage_features, question_terms

WINDOWS = (20, 40, 80)


def load(paths: list[Path]):
    """Question records (with the product's order) and chunk -> (doc id, text, title)."""
    questions, chunks = [], {}
    saved_dumps = [pickle.loads(path.read_bytes()) for path in paths]
    # A file asked in two dumps (two pools) is named "STEM (DUMP)" in both.
    seen: dict[str, int] = {}
    for saved in saved_dumps:
        for file in {row[0] for row in saved[0]}:
            seen[file] = seen.get(file, 0) + 1
    for n, (path, saved) in enumerate(zip(paths, saved_dumps, strict=True)):
        rows, docs, extras, texts = saved[:4]
        titles = saved[4] if len(saved) > 4 else {}
        for i, doc in docs.items():
            # Chunk ids restart in every dump: key them by (dump, id).
            chunks[(n, i)] = (doc, texts[i], titles.get(doc, ""))
        for (file, gold, v, k, coverage), extra in zip(rows, extras, strict=True):
            v = {(n, i): s for i, s in v.items()}
            k = {(n, i): s for i, s in k.items()}
            ranked = fusion.blend(v, k, 0.6 - 0.35 * coverage)
            if seen[file] > 1:
                file = f"{Path(file).stem} ({path.stem})"
            questions.append({"file": file, "gold": gold, "v": v, "k": k,
                              "product": [(c.chunk_id, c.score) for c in ranked], **extra})
    return questions, chunks


def prepare(question, chunks, depth: int):
    """(ids of the best `depth`, their product scores, feature matrix, the rest's ids).

    Columns: for each window width in WINDOWS the window share, then in_order, exact,
    title (FEATURE_NAMES after the first)."""
    head = question["product"][:depth]
    terms = question_terms(question["question"], question["idf"])
    rows = []
    for chunk_id, _ in head:
        _, text, title = chunks[chunk_id]
        values = [passage_features(terms, text, title, window=w) for w in WINDOWS]
        rows.append([v[0] for v in values] + list(values[0][1:]))
    ids = [c for c, _ in head]
    scores = np.array([s for _, s in head])
    rest = [c for c, _ in question["product"][depth:]]
    return ids, scores, np.array(rows).reshape(len(ids), len(WINDOWS) + 3), rest


COLUMNS = tuple(f"window {w}" for w in WINDOWS) + FEATURE_NAMES[1:]


def order_by(ids, scores, rest):
    order = sorted(range(len(ids)), key=lambda j: (-scores[j], j))
    return [ids[j] for j in order] + rest


def fit_listwise(prepared, golds, chunks, l2: float = 0.0) -> np.ndarray:
    """Weights of [product score, features...] maximising the softmax likelihood of the
    gold paragraph's best chunk among each tuning question's candidates."""
    data = []
    for (ids, scores, f, _), gold in zip(prepared, golds, strict=True):
        hits = [j for j, c in enumerate(ids) if chunks[c][0] == gold]
        if hits and len(ids) > 1:
            data.append((np.column_stack([scores, f]), hits[0]))

    def loss(w):
        total, grad = 0.0, np.zeros_like(w)
        for x, gold in data:
            s = x @ w
            s -= s.max()
            p = np.exp(s) / np.exp(s).sum()
            total -= np.log(p[gold] + 1e-12)
            grad -= x[gold] - p @ x
        return total / len(data) + l2 * (w[1:] @ w[1:]), grad / len(data) + np.concatenate(
            [[0.0], 2 * l2 * w[1:]])

    start = np.zeros(data[0][0].shape[1])
    start[0] = 10.0
    return minimize(loss, start, jac=True, method="L-BFGS-B").x


GRID = (0.0, 0.1, 0.2, 0.3, 0.5)


def grid_variant(weights):
    """Product score plus in_order, window 40 and exact at the given weights."""
    columns = [COLUMNS.index("in_order"), COLUMNS.index("window 40"), COLUMNS.index("exact")]
    return lambda ids, s, f, r: order_by(ids, s + f[:, columns] @ np.array(weights), r)


def grid_search(questions, prepared, chunks, tune: list[int]) -> tuple[float, ...]:
    """The weights of GRID^3 with the best mean recall@1 over the tuning files (ties:
    the smallest weights), judged on the tuning questions only."""
    files = sorted({questions[i]["file"] for i in tune})
    best, best_key = (0.0, 0.0, 0.0), None
    for a in GRID:
        for b in GRID:
            for c in GRID:
                fn = grid_variant((a, b, c))
                hits = {f: [] for f in files}
                for i in tune:
                    q = questions[i]
                    order = fn(*prepared[i])
                    hits[q["file"]].append(chunks[order[0]][0] == q["gold"])
                key = (sum(sum(h) / len(h) for h in hits.values()) / len(files), -(a + b + c))
                if best_key is None or key > best_key:
                    best, best_key = (a, b, c), key
    return best


def print_cosine_spans(questions) -> None:
    """Median spread of each question's candidate cosines, over all its candidates and
    over its 10 most similar: how far apart the vectors put the passages in play."""
    spans: dict[str, tuple[list, list]] = {}
    for q in questions:
        cosines = sorted(q["v"].values(), reverse=True)
        whole, top = spans.setdefault(q["file"], ([], []))
        whole.append(cosines[0] - cosines[-1])
        top.append(cosines[0] - cosines[min(9, len(cosines) - 1)])
    print("| file | questions | cosine span, all candidates | cosine span, best 10 |")
    print("|---|---|---|---|")
    for file, (whole, top) in sorted(spans.items()):
        print(f"| {file} | {len(whole)} | {statistics.median(whole):.3f} | "
              f"{statistics.median(top):.3f} |")


def print_sibling_misses(questions, chunks) -> None:
    """How many of the product's rank-1 misses are another paragraph of the right
    article (SQuAD paragraphs are keyed FILE-ARTICLE-PARAGRAPH by qa.evaluation)."""
    print("| file | product misses at rank 1 | of them a sibling paragraph |\n|---|---|---|")
    counts: dict[str, list[int]] = {}
    for q in questions:
        top = chunks[q["product"][0][0]][0] if q["product"] else None
        if top is None or top == q["gold"]:
            continue
        tally = counts.setdefault(q["file"], [0, 0])
        tally[0] += 1
        tally[1] += top.rsplit("-", 1)[0] == q["gold"].rsplit("-", 1)[0]
    for file, (misses, siblings) in sorted(counts.items()):
        print(f"| {file} | {misses} | {siblings} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dumps", nargs="+", type=Path)
    parser.add_argument("--tune", nargs="+", default=[], help="file names fitted on")
    parser.add_argument("--depth", type=int, default=20, help="candidates re-ranked")
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    questions, chunks = load(args.dumps)
    print_cosine_spans(questions)
    print_sibling_misses(questions, chunks)
    prepared = [prepare(q, chunks, args.depth) for q in questions]
    took = (time.perf_counter() - started) * 1000
    print(f"{len(questions)} questions loaded and their features computed in {took:.0f} ms",
          file=sys.stderr)
    cost = []
    for q in questions[:: max(1, len(questions) // 500)]:
        t0 = time.perf_counter()
        prepare(q, chunks, args.depth)
        cost.append((time.perf_counter() - t0) * 1000 / len(WINDOWS))
    print(f"features of the top {args.depth} per question: p50 {statistics.median(cost):.2f} ms "
          f"(one window width)", file=sys.stderr)

    variants = {"product: min-max, adaptive 0.25-0.6": lambda ids, s, f, r: order_by(ids, s, r)}
    for col, name in enumerate(COLUMNS):
        for extra in (0.1, 0.2, 0.3, 0.5):
            variants[f"product + {extra} x {name} (top {args.depth})"] = (
                lambda ids, s, f, r, col=col, extra=extra: order_by(ids, s + extra * f[:, col], r))
    # The shipped re-rank (0.2 x in_order) with the title added at each weight.
    in_order, title = COLUMNS.index("in_order"), COLUMNS.index("title")
    for extra in (0.1, 0.2, 0.3, 0.5):
        variants[f"product + 0.2 x in_order + {extra} x title (top {args.depth})"] = (
            lambda ids, s, f, r, extra=extra: order_by(
                ids, s + 0.2 * f[:, in_order] + extra * f[:, title], r))
    tune = [i for i, q in enumerate(questions) if q["file"] in args.tune]
    # Which columns a learned combination uses: all, and all but the title.
    subsets = {"all features": list(range(len(COLUMNS))),
               "no title": [c for c, n in enumerate(COLUMNS) if n != "title"]}
    for label, columns in subsets.items() if tune else ():
        weights = fit_listwise([(ids, s, f[:, columns], r) for ids, s, f, r in
                                (prepared[i] for i in tune)],
                               [questions[i]["gold"] for i in tune], chunks)
        print(f"listwise weights ({label}): " + ", ".join(f"{n} {w:+.3f}" for n, w in zip(
            ("product",) + tuple(COLUMNS[c] for c in columns), weights, strict=True)),
            file=sys.stderr)
        variants[f"learned listwise, {label} (top {args.depth})"] = (
            lambda ids, s, f, r, w=weights, c=columns: order_by(
                ids, np.column_stack([s, f[:, c]]) @ w, r))

    if tune:
        weights = grid_search(questions, prepared, chunks, tune)
        print("grid weights (in_order, window 40, exact): " + ", ".join(map(str, weights)),
              file=sys.stderr)
        variants["grid on the tuning files: product + {} x in_order + {} x window 40 + {} x "
                 "exact (top {})".format(*weights, args.depth)] = grid_variant(weights)

    files = sorted({q["file"] for q in questions})
    results = {}
    print(f"{'variant':<52}" + "".join(f"{f[:18]:>20}" for f in files))
    for name, fn in variants.items():
        ranks: dict[str, list] = {}
        for q, (ids, s, f, rest) in zip(questions, prepared, strict=True):
            ranks.setdefault(q["file"], []).append(
                paragraph_rank([chunks[c][0] for c in fn(ids, s, f, rest)], q["gold"]))
        results[name] = {f: metrics(r) for f, r in ranks.items()}
        print(f"{name:<52}" + "".join(f"{results[name][f]['recall@1']:>20.4f}" for f in files))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"tuned_on": args.tune, "results": results},
                                            indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
