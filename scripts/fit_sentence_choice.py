"""Fit and check the weights of qa.sentence_choice on dumps of `scripts/tune_highlight.py dump`.

For every question whose rank-1 document is right, the sentences of that document's
candidate chunks (the best qa.passage_choice.POOL_LIMIT) get their features
(qa.sentence_choice.sentence_rows); a conditional logistic regression (softmax over
a question's sentences, numpy, Adam) is fitted on the tuning part and the chosen
sentence is scored on every part: sentence@1 and sentence@1 / recall@1, against
today's choice (qa.passage_choice + qa.highlight).

Tuning part, fixed by article (scripts/sentence_failures.py tuning_part): all of
CMRC trial, the even-numbered articles of CMRC dev, news_dev; held out: the odd
CMRC dev articles, DRCD dev, news_heldout.

    PYTHONPATH=. .venv/bin/python scripts/fit_sentence_choice.py \
        artifacts/sent/cmrc_dev.jsonl artifacts/sent/cmrc_trial.jsonl \
        artifacts/sent/news_dev.jsonl artifacts/sent/drcd_dev.jsonl \
        artifacts/sent/news_heldout.jsonl --json artifacts/sent/fit.json
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import script_setup  # noqa: F401 - this checkout's qa first on sys.path
from sentence_extras import EXTRAS, extra_features  # noqa: E402
from sentence_failures import document_candidates, document_sentences, tuning_part  # noqa: E402
from tune_highlight import set_constants  # noqa: E402

from qa import highlight, passage_choice, sentence_choice  # noqa: E402
from qa.answer_cues import question_kind  # noqa: E402
from qa.config import load_config  # noqa: E402
from qa.evaluation import sentence_holds_answer  # noqa: E402
from qa.normalize import fold  # noqa: E402
from qa.sentence_choice import FEATURES  # noqa: E402
from qa.tokenizer import Tokenizer  # noqa: E402

# What else a question may ask for, when qa.answer_cues finds no kind: what something
# is (定义, 什么是, 职业), why (为什么), how (怎么, 如何). `--per-kind` fits weights for each.
_OTHER_KINDS = (
    ("definition", re.compile(r"定义|什么是|指什么|含义|意思|职业|身份|是什么人|是什么东西")),
    ("reason", re.compile(r"为什么|为何|原因|why\b")),
    ("manner", re.compile(r"怎么|怎样|如何|how\b")),
)


def answer_kind(question: str) -> str:
    """What a question asks for: qa.answer_cues's kind, else definition, reason, manner
    or other."""
    kind = question_kind(question)
    if kind is not None:
        return kind
    folded = fold(question)
    return next((name for name, pattern in _OTHER_KINDS if pattern.search(folded)), "other")



def question_table(row: dict, tokenizer: Tokenizer) -> dict:
    """A right-document question's sentences: features, labels, and today's hit."""
    answers = tuple(row["answers"])
    found, chunks, rows = document_sentences(row, tokenizer)
    labels = [sentence_holds_answer(chunks[r.chunk].text[r.span[0]:r.span[1]], answers)
              for r in rows]
    shown, (start, end) = before_choice(row["question"], row["idf"], tokenizer, found)
    return {"question": row["question"], "kind": answer_kind(row["question"]),
            "idf": row["idf"],
            "sentences": [chunks[r.chunk].text[r.span[0]:r.span[1]] for r in rows],
            "answer": answers[0],
            "chunks": np.array([r.chunk for r in rows]),
            "chunk holds it": np.array([sentence_holds_answer(chunks[r.chunk].text, answers)
                                        for r in rows], dtype=bool),
            "features": np.array([r.features for r in rows], dtype=float),
            "labels": np.array(labels, dtype=bool),
            "today": sentence_holds_answer(shown.text[start:end], answers)}


# The choice before the fitted weights (commit 67ace16): each candidate chunk's best
# sentence by qa.highlight's score, and a later-ranked chunk replaces the best-ranked
# one when its sentence scores at least MARGIN more.
MARGIN = 0.1


def before_choice(question: str, idf: dict, tokenizer: Tokenizer, found: list
                  ) -> tuple[object, tuple[int, int]]:
    """The passage shown for a document and its marked sentence, as chosen before."""
    ordinals = [c.ordinal for c, _ in found]
    texts = [c.text for c, _ in found]
    contexts = [sentence_choice.earlier_text(ordinals, texts, o) for o in ordinals]
    scored = highlight.scored_answer_spans(question, idf, tokenizer, texts,
                                           contexts=contexts)
    best, to_beat = 0, scored[0][1] + MARGIN
    for position in range(1, len(scored)):
        if scored[position][1] > to_beat:
            best, to_beat = position, scored[position][1]
    return found[best][0], scored[best][0]


def add_sentence_cosine(tables: list[dict], config_path: str) -> None:
    """Append each sentence's cosine to its question (less the best of its document's
    sentences) to the features; vectors come from the embedding cache where it has them."""
    from qa.cli import cached, load_embedder

    config = load_config(config_path)
    embedder = cached(load_embedder(config), config)
    texts = sorted({s for t in tables for s in t["sentences"]})
    started = time.perf_counter()
    vectors = {}
    for start in range(0, len(texts), 256):
        batch = texts[start : start + 256]
        vectors.update(zip(batch, embedder.embed_passages(batch), strict=True))
    questions = embedder.embed_queries([t["question"] for t in tables])
    print(f"{len(texts)} sentences embedded in {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    for table, question in zip(tables, questions, strict=True):
        cosines = np.array([vectors[s] @ question for s in table["sentences"]])
        table["features"] = np.hstack([table["features"],
                                       (cosines - cosines.max())[:, None]])


def add_extras(tables: list[dict], names: list[str], tokenizer: Tokenizer) -> None:
    """Append the named features of scripts/sentence_extras.py (tried, not kept)."""
    cue = FEATURES.index("cue")
    for table in tables:
        extra = extra_features(names, table["question"], table["idf"], tokenizer,
                               table["sentences"], table["features"][:, cue].tolist())
        table["features"] = np.hstack([table["features"],
                                       np.array(extra).reshape(len(extra), len(names))])


def fit(tables: list[dict], iterations: int = 1500, l2: float = 1e-3,
        prior: np.ndarray | None = None, scale: np.ndarray | None = None) -> np.ndarray:
    """Weights maximising the softmax probability of the answer-holding sentences
    (penalised by l2 towards `prior`, in the units of `scale`, if given)."""
    usable = [t for t in tables if t["labels"].any() and len(t["labels"]) > 1]
    stacked = np.vstack([t["features"] for t in usable])
    if scale is None:
        scale = stacked.std(axis=0)
        scale[scale == 0] = 1.0
    target = np.zeros(stacked.shape[1]) if prior is None else prior * scale
    segments = np.cumsum([0] + [len(t["labels"]) for t in usable])
    x = stacked / scale
    y = np.concatenate([t["labels"] for t in usable])
    weights = np.zeros(x.shape[1])
    moment, velocity = np.zeros_like(weights), np.zeros_like(weights)
    starts = segments[:-1]
    sizes = np.diff(segments)
    for step in range(1, iterations + 1):
        logits = x @ weights
        gradient = l2 * (weights - target)
        # Softmax within each question's segment, all segments at once.
        part = np.exp(logits - np.repeat(np.maximum.reduceat(logits, starts), sizes))
        probabilities = part / np.repeat(np.add.reduceat(part, starts), sizes)
        held = part * y
        posterior = held / np.repeat(np.add.reduceat(held, starts), sizes)
        gradient += x.T @ (probabilities - posterior) / len(usable)
        moment = 0.9 * moment + 0.1 * gradient
        velocity = 0.999 * velocity + 0.001 * gradient**2
        weights -= 0.05 * (moment / (1 - 0.9**step)) / (np.sqrt(velocity / (1 - 0.999**step))
                                                       + 1e-8)
    return weights / scale


def feature_scale(tables: list[dict]) -> np.ndarray:
    scale = np.vstack([t["features"] for t in tables]).std(axis=0)
    scale[scale == 0] = 1.0
    return scale


def hits(table: dict, weights: np.ndarray | dict) -> bool:
    if isinstance(weights, dict):
        weights = weights.get(table["kind"], weights["pooled"])
    scores = table["features"] @ weights
    # The earliest wins a tie, as qa.sentence_choice.best_row.
    return bool(table["labels"][int(np.argmax(scores))])


def read_tables(dumps: list[Path], tokenizer: Tokenizer
                ) -> tuple[dict[tuple[str, str], list[dict]], Counter[tuple[str, str]]]:
    """Each file part's right-document questions (question_table), and its question count."""
    parts: dict[tuple[str, str], list[dict]] = {}
    counts: Counter[tuple[str, str]] = Counter()
    started = time.perf_counter()
    for path in dumps:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            part = (path.stem, "tuning" if tuning_part(path, row) else "held out")
            counts[part] += 1
            if row["right"] and row["answers"]:
                parts.setdefault(part, []).append(question_table(row, tokenizer))
    print(f"features of {sum(counts.values())} questions in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return parts, counts


def time_choices(dumps: list[Path], tokenizer: Tokenizer, count: int) -> dict:
    """Median milliseconds to choose the passage and sentence of a rank-1 document, the
    choice before and the fitted one, interleaved on the first `count` questions."""
    rows = [json.loads(line) for path in dumps
            for line in path.read_text(encoding="utf-8").splitlines()][:count]
    before, after = [], []
    for row in rows:
        found = document_candidates(row)[: passage_choice.POOL_LIMIT]
        top_doc = row["ranked"][0][0]
        scores = [SimpleNamespace(score=s.score, vector=v, keyword=k) for (_, s), (v, k) in zip(
            found, [c for (doc, _, _), c in zip(row["ranked"], row["components"], strict=True)
                    if doc == top_doc], strict=False)]
        found = [(c, s) for (c, _), s in zip(found, scores, strict=True)]
        tokenizer._cached_tokens.cache_clear()
        tokenizer._cached_tags.cache_clear()
        started = time.perf_counter()
        before_choice(row["question"], row["idf"], tokenizer, found)
        before.append((time.perf_counter() - started) * 1000)
        tokenizer._cached_tokens.cache_clear()
        tokenizer._cached_tags.cache_clear()
        started = time.perf_counter()
        passage_choice.stand_ins(row["question"], row["idf"], tokenizer, found, [top_doc])
        after.append((time.perf_counter() - started) * 1000)
    return {"questions": len(rows), "before_ms_p50": float(np.median(before)),
            "after_ms_p50": float(np.median(after)),
            "before_ms_p95": float(np.percentile(before, 95)),
            "after_ms_p95": float(np.percentile(after, 95))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dumps", nargs="+", type=Path)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--cosine", action="store_true",
                        help="add each sentence's cosine to the question (the model) as a "
                        "feature, less the document's best")
    parser.add_argument("--per-kind", type=float, default=0.0, metavar="L2",
                        help="also fit weights per answer kind, held towards the pooled "
                        "ones by this l2 penalty")
    parser.add_argument("--show", type=int, default=0, help="print this many tuning failures")
    parser.add_argument("--drop", action="append", default=[],
                        help="leave this feature out (fit without it)")
    parser.add_argument("--tables", type=Path, help="pickle of the feature tables: read "
                        "if it exists, else written (delete it after changing features)")
    parser.add_argument("--extra", action="append", default=[], choices=EXTRAS,
                        help="add this feature of scripts/sentence_extras.py (tried, not kept)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a qa.highlight or qa.sentence_choice constant "
                        "(e.g. JOIN_ABBREVIATIONS=0, CUE_RANGE=2)")
    parser.add_argument("--time", type=int, default=0, metavar="N",
                        help="only time the choice before and the fitted one on N questions")
    args = parser.parse_args()
    tokenizer = Tokenizer(list(load_config(args.config).keywords.user_words))
    set_constants(args.set, (highlight, sentence_choice))
    if args.time:
        timing = time_choices(args.dumps, tokenizer, args.time)
        print(json.dumps(timing))
        if args.json:
            args.json.write_text(json.dumps(timing, indent=1))
        return
    if args.tables and args.tables.exists():
        parts, counts = pickle.loads(args.tables.read_bytes())
    else:
        parts, counts = read_tables(args.dumps, tokenizer)
        if args.tables:
            args.tables.write_bytes(pickle.dumps((parts, counts)))
    names = (*FEATURES, *args.extra)
    if args.extra:
        add_extras([t for tables in parts.values() for t in tables], args.extra, tokenizer)
    if args.cosine:
        add_sentence_cosine([t for tables in parts.values() for t in tables], args.config)
        names = (*names, "sentence cosine")
    tuning = [t for (_, name), tables in parts.items() if name == "tuning" for t in tables]
    keep = np.array([name not in args.drop for name in names], dtype=float)
    for table in tuning:
        table["features"] = table["features"] * keep
    weights = fit(tuning) * keep
    if args.per_kind:
        scale = feature_scale(tuning)
        pooled = weights
        weights = {"pooled": pooled}
        for kind in sorted({t["kind"] for t in tuning}):
            group = [t for t in tuning if t["kind"] == kind]
            weights[kind] = fit(group, l2=args.per_kind, prior=pooled, scale=scale) * keep
            print(f"{kind} ({len(group)}):", ", ".join(
                f"{name} {w:.2f}" for name, w in zip(names, weights[kind], strict=True)))
    current = np.array(sentence_choice.WEIGHTS + (0.0,) * (len(names) - len(FEATURES)))
    pooled = weights["pooled"] if isinstance(weights, dict) else weights
    print("weights:", ", ".join(f"{name} {w:.3f}" for name, w in zip(names, pooled,
                                                                      strict=True)))
    report = {"weights": {kind: dict(zip(names, w.round(4).tolist(), strict=True))
                          for kind, w in (weights.items() if isinstance(weights, dict)
                                          else [("pooled", weights)])},
              "parts": []}
    print(f"{'file':16s} {'part':9s} {'questions':>9s} {'recall@1':>8s} {'today':>6s} "
          f"{'fitted':>6s} {'today/r@1':>9s} {'fitted/r@1':>10s} {'in cands':>8s}")
    for (stem, name), tables in sorted(parts.items()):
        n = counts[stem, name]
        right = len(tables)
        today = sum(t["today"] for t in tables)
        fitted = sum(hits(t, weights) for t in tables)
        reachable = sum(bool(t["labels"].any()) for t in tables)
        entry = {"file": stem, "part": name, "questions": n, "recall@1": right / n,
                 "sentence@1 today": today / n, "sentence@1 fitted": fitted / n,
                 "today / recall@1": today / right, "fitted / recall@1": fitted / right,
                 "current weights": sum(hits(t, current) for t in tables) / right,
                 "a sentence holds it": reachable / right}
        report["parts"].append(entry)
        print(f"{stem:16s} {name:9s} {n:9d} {right / n:8.4f} {today / n:6.4f} "
              f"{fitted / n:6.4f} {today / right:9.4f} {fitted / right:10.4f} "
              f"{reachable / right:8.4f}")
    pooled_hits = sum(hits(t, weights) for t in tuning)
    report["tuning pooled fitted / recall@1"] = pooled_hits / len(tuning)
    print(f"tuning part pooled: {len(tuning)} right documents, fitted / recall@1 "
          f"{pooled_hits / len(tuning):.4f}")
    failures: Counter[str] = Counter()
    shown = 0
    for table in tuning:
        scores = table["features"] @ (weights.get(table["kind"], pooled)
                                      if isinstance(weights, dict) else weights)
        pick = int(np.argmax(scores))
        if table["labels"][pick]:
            continue
        if not table["labels"].any():
            failures["no sentence holds it"] += 1
            continue
        failures["chunk without it" if not table["chunk holds it"][pick]
                 else "right chunk, other sentence"] += 1
        if shown < args.show:
            shown += 1
            print("Q", table["question"], "| A", table["answer"])
            for i in np.argsort(-scores)[:4]:
                print(f"   {'*' if table['labels'][i] else ' '} {scores[i]:7.2f} "
                      f"c{table['chunks'][i]} {table['sentences'][i][:60]}")
            best = int(np.flatnonzero(table["labels"])[0])
            print(f"   answer {scores[best]:7.2f} c{table['chunks'][best]} "
                  f"{table['sentences'][best][:60]}")
    print("tuning failures:", dict(failures))
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
