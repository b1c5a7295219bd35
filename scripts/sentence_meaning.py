"""Does the model's meaning help choose the answering sentence, and what does it cost?

On dumps of `scripts/tune_highlight.py dump`, for every question whose rank-1 document is
right, the sentences of that document's candidate chunks are scored as the product scores
them (qa.sentence_choice: features and fitted weights). Then, only when the best sentence
wins by less than MARGIN (in those score units), the best m sentences are compared with
the question by the model: each embedded alone (as qa.sentence_vectors does), its cosine
to the question's vector times a weight W is added to its score, and the best of the m
wins. With `--openings`, the opening sentence of the chunk right after the winner's (when
it is a candidate) joins the m: the answer that shares no word with the question
(生活习性 -> 栖息在礁区……) is often there. With `--titled SQUAD…`, each sentence is
embedded after its document's title (read from those files), as the product does
(qa.meaning_choice.embedded_text); without it, alone. `--cap N` embeds only a
sentence's first N characters (after the title); with `--near` only those of the best m
within the margin of the best go to the model. `--in-context` gives each sentence the
mean of the model's last layer over its tokens when its whole chunk is run as indexed
(title first): vectors an indexer could keep at no extra model run.

The split is the one of scripts/fit_sentence_choice.py (tuning: CMRC trial, the
even-numbered CMRC dev articles, news_dev; held out: the odd CMRC dev articles, DRCD dev,
news_heldout). M, MARGIN and W are chosen on the tuning part only; every setting of the
grid is printed with its held-out figures beside it, with the share of questions that
asked the model, the sentences it embedded per question (none kept between questions)
and the CPU that costs at the measured CPU per sentence.

    QA_MODEL_CACHE=… .venv/bin/python scripts/sentence_meaning.py \
        artifacts/sent/cmrc2018_dev.jsonl artifacts/sent/cmrc2018_trial.jsonl \
        artifacts/sent/news_dev.jsonl artifacts/sent/DRCD_dev.jsonl \
        artifacts/sent/news_heldout.jsonl --vectors artifacts/sent/meaning_vectors.pkl \
        --json artifacts/sent/meaning.json [--titled CMRC_DEV CMRC_TRIAL DRCD_DEV NEWS…]
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from script_setup import announce  # noqa: E402
from sentence_failures import document_sentences, tuning_part  # noqa: E402

from qa import sentence_choice  # noqa: E402
from qa.config import load_config, with_model_cache_from_environment  # noqa: E402
from qa.embedder import create_embedder  # noqa: E402
from qa.evaluation import read_squad, sentence_holds_answer  # noqa: E402
from qa.meaning_choice import embedded_text  # noqa: E402
from qa.tokenizer import Tokenizer  # noqa: E402

# The most sentences a question may send to the model in the grid below.
MOST = 6
SIZES = (2, 3, 4, 6)
MARGINS = (0.5, 0.75, 1.0, 2.0, 3.0, 5.0, float("inf"))
WEIGHTS = (1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)
FIRST = sentence_choice.FEATURES.index("first")


def question_table(row: dict, tokenizer: Tokenizer, titles: dict[str, str],
                   cap: int | None = None) -> dict:
    """A right-document question's sentences: text, chunk, the chunk's place in the
    document, whether it opens its chunk, today's score and whether it holds the answer.
    With `cap`, the model embeds only a sentence's first `cap` characters."""
    answers = tuple(row["answers"])
    found, chunks, rows = document_sentences(row, tokenizer)
    title = titles.get(row["ranked"][0][0], "")
    return {"question": row["question"],
            "sentences": [chunks[r.chunk].text[r.span[0]:r.span[1]] for r in rows],
            # What the model embeds for each: with `--titled`, the document's title first.
            "embedded": [embedded_text(chunks[r.chunk].text[r.span[0]:r.span[1]][:cap], title)
                         for r in rows],
            "ordinals": [chunks[r.chunk].ordinal for r in rows],
            # Where each sentence sits, for `--in-context`: its chunk's text and span.
            "places": [(title, chunks[r.chunk].text, r.span) for r in rows],
            "opens": [r.features[FIRST] == 1.0 for r in rows],
            "scores": np.array([sentence_choice.row_score(r) for r in rows]),
            "labels": np.array([sentence_holds_answer(
                chunks[r.chunk].text[r.span[0]:r.span[1]], answers) for r in rows])}


def pool(table: dict, size: int, margin: float, openings: bool, near: bool = False
         ) -> list[int]:
    """The sentences sent to the model (empty when the best wins by `margin` or more):
    the best `size` by today's score, and with `openings` the opening sentence of the
    chunk right after the best one's."""
    scores = table["scores"]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    if len(order) < 2 or scores[order[0]] - scores[order[1]] >= margin:
        return []
    chosen = order[:size]
    if near:
        chosen = [i for i in chosen if scores[order[0]] - scores[i] < margin]
    if openings:
        after = table["ordinals"][order[0]] + 1
        chosen += [i for i, (o, first) in enumerate(zip(table["ordinals"], table["opens"],
                                                        strict=True))
                   if o == after and first and i not in chosen]
    return chosen


def choice(table: dict, chosen: list[int], weight: float, cosines: dict[str, float]) -> int:
    """The sentence marked: today's best, or the best of `chosen` with the cosine added."""
    scores = table["scores"]
    if not chosen:
        return max(range(len(scores)), key=lambda i: (scores[i], -i))
    return max(chosen, key=lambda i: (scores[i] + weight * cosines[table["embedded"][i]], -i))


def agreement(tables: list[dict]) -> str:
    """How often the highest cosine among a question's MOST best sentences (and the next
    chunk's opening) is today's marked sentence when that one holds the answer, and holds
    the answer when today's does not (and one of them does)."""
    hits = agree = misses = found = 0
    for table in tables:
        chosen = pool(table, MOST, float("inf"), True)
        if not chosen:
            continue
        closest = max(chosen, key=lambda i: table["cosines"][table["embedded"][i]])
        today = choice(table, [], 0.0, {})
        if table["labels"][today]:
            hits += 1
            agree += closest == today
        elif table["labels"][chosen].any():
            misses += 1
            found += bool(table["labels"][closest])
    return (f"tuning part: the closest in meaning is today's marked sentence in {agree} of "
            f"{hits} hits, and holds the answer in {found} of {misses} misses whose answer "
            f"is among the {MOST} best")


def explain(table: dict) -> None:
    """A question's best sentences today, with their scores and cosines (* holds it)."""
    print("Q", table["question"])
    for i in pool(table, MOST, float("inf"), False):
        print(f"  {'*' if table['labels'][i] else ' '} score {table['scores'][i]:6.2f} "
              f"cosine {table['cosines'][table['embedded'][i]]:.3f} {table['sentences'][i][:60]}")


def embed_needed(tables: list[dict], config, vectors_path: Path | None
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]:
    """Question vectors and the vectors of every sentence any setting may send to the
    model, each embedded alone (kept in `vectors_path` between runs), and the CPU
    milliseconds per sentence measured while embedding them."""
    kept = pickle.loads(vectors_path.read_bytes()) if vectors_path and vectors_path.exists() \
        else {"questions": {}, "sentences": {}, "cpu_ms": []}
    needed = {table["embedded"][i] for table in tables
              for i in pool(table, MOST, float("inf"), True)}
    embedder = None
    missing_q = [t["question"] for t in tables if t["question"] not in kept["questions"]]
    missing_s = sorted(needed - kept["sentences"].keys())
    if missing_q or missing_s:
        embedder = create_embedder(config.model)
        print(f"embedding {len(set(missing_q))} questions and {len(missing_s)} sentences",
              file=sys.stderr)
    for question in dict.fromkeys(missing_q):
        kept["questions"][question] = embedder.embed_queries([question])[0]
    for number, sentence in enumerate(missing_s):
        started = time.process_time()
        kept["sentences"][sentence] = embedder.embed_passages([sentence])[0]
        kept["cpu_ms"].append(1000 * (time.process_time() - started))
        if number % 2000 == 0:
            print(f"{number}/{len(missing_s)}", file=sys.stderr)
            if vectors_path:
                vectors_path.write_bytes(pickle.dumps(kept))
    if vectors_path and (missing_q or missing_s):
        vectors_path.write_bytes(pickle.dumps(kept))
    return kept["questions"], kept["sentences"], float(np.mean(kept["cpu_ms"]))


def embed_in_context(tables: list[dict], config) -> tuple[dict[str, np.ndarray],
                                                          dict[str, np.ndarray], float]:
    """Question vectors and a vector for every sentence read in its chunk: the chunk is
    run through the model once, as it is embedded for the index (prompt, title, text),
    and each sentence's vector is the mean of the model's last layer over the tokens of
    that sentence (normalised). Each table's "embedded" keys become the sentences'
    places. Returns the CPU milliseconds per chunk run."""
    embedder = create_embedder(config.model)
    tokenizer, session = embedder._tokenizer, embedder._session
    prompt = config.model.passage_prompt
    sentences: dict[str, np.ndarray] = {}
    chunk_cpu: list[float] = []
    done: set[tuple[str, str]] = set()

    def key(title: str, text: str, start: int, end: int) -> str:
        return f"{title}\x00{text}\x00{start},{end}"

    for table in tables:
        keys = []
        for title, text, (start, end) in table["places"]:
            keys.append(key(title, text, start, end))
            if (title, text) in done:
                continue
            done.add((title, text))
            head = prompt + (f"{title}\n" if title else "")
            began = time.process_time()
            encoding = tokenizer.encode(head + text)
            ids = np.array([encoding.ids], dtype=np.int64)
            hidden = session.run(None, {"input_ids": ids,
                                        "attention_mask": np.ones_like(ids)})[0][0]
            chunk_cpu.append(1000 * (time.process_time() - began))
            special = encoding.special_tokens_mask
            for _, _, (s, e) in (p for p in table["places"] if p[1] == text):
                low, high = len(head) + s, len(head) + e
                picked = [t for t, (a, b) in enumerate(encoding.offsets)
                          if not special[t] and b > low and a < high]
                vector = hidden[picked].mean(axis=0) if picked else hidden.mean(axis=0)
                sentences[key(title, text, s, e)] = vector / max(
                    float(np.linalg.norm(vector)), 1e-12)
        table["embedded"] = keys
    # Each question alone, as `ask` embeds it (and as embed_needed does).
    questions = {q: embedder.embed_queries([q])[0]
                 for q in dict.fromkeys(t["question"] for t in tables)}
    print(f"{len(done)} chunks run, {len(sentences)} sentences", file=sys.stderr)
    return questions, sentences, float(np.mean(chunk_cpu))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dumps", nargs="+", type=Path)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--vectors", type=Path, help="pickle of the vectors: read and extended")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--explain", metavar="TEXT",
                        help="print the best sentences of the questions holding TEXT")
    parser.add_argument("--titled", nargs="+", type=Path, metavar="SQUAD",
                        help="embed each sentence after its document's title (as chunks are "
                        "embedded), the titles read from these SQuAD files")
    parser.add_argument("--in-context", action="store_true",
                        help="a sentence's vector is the mean of the model's last layer over "
                        "its tokens when its whole chunk is embedded (computed at indexing "
                        "at no extra model run), not a run of the sentence alone")
    parser.add_argument("--near", action="store_true",
                        help="of the best m, only those within the margin of the best go to "
                        "the model (fewer sentences embedded)")
    parser.add_argument("--cap", type=int, metavar="CHARS",
                        help="the model embeds only a sentence's first CHARS characters "
                        "(after the title): fewer tokens, less CPU")
    args = parser.parse_args()
    announce()
    config = with_model_cache_from_environment(load_config(args.config))
    tokenizer = Tokenizer(list(config.keywords.user_words))
    titles = ({d.doc_id: d.title or "" for d in read_squad(args.titled).documents}
              if args.titled else {})
    parts: dict[tuple[str, str], list[dict]] = {}
    counts: dict[tuple[str, str], int] = {}
    for path in args.dumps:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            part = (path.stem, "tuning" if tuning_part(path, row) else "held out")
            counts[part] = counts.get(part, 0) + 1
            if row["right"] and row["answers"]:
                parts.setdefault(part, []).append(question_table(row, tokenizer, titles, args.cap))
    tables = [t for group in parts.values() for t in group]
    if args.in_context:
        questions, sentences, cpu_ms = embed_in_context(tables, config)
    else:
        questions, sentences, cpu_ms = embed_needed(tables, config, args.vectors)
    for table in tables:
        vector = questions[table["question"]]
        table["cosines"] = {s: float(sentences[s] @ vector) for s in table["embedded"]
                            if s in sentences}
    print(f"CPU per sentence embedded alone: {cpu_ms:.2f} ms (mean of those embedded)")
    print(agreement([t for (_, part), group in parts.items() if part == "tuning"
                     for t in group]))
    for table in tables:
        if args.explain and args.explain in table["question"]:
            explain(table)
    names = sorted(parts)
    tuning = [t for (_, part), group in parts.items() if part == "tuning" for t in group]
    results = []
    settings = [(0, 0.0, 0.0, False)] + list(itertools.product(
        SIZES, MARGINS, WEIGHTS, (False, True)))
    for size, margin, weight, openings in settings:
        pools = {id(t): pool(t, size, margin, openings, args.near) if size else []
                 for t in tables}
        entry = {"m": size, "margin": margin, "weight": weight, "openings": openings}
        for name in names:
            group = parts[name]
            entry[f"{name[0]} {name[1]}"] = sum(
                bool(t["labels"][choice(t, pools[id(t)], weight, t["cosines"])])
                for t in group) / len(group)
        entry["tuning pooled"] = sum(
            bool(t["labels"][choice(t, pools[id(t)], weight, t["cosines"])])
            for t in tuning) / len(tuning)
        asked = [len(pools[id(t)]) for t in tables]
        entry["share asking the model"] = sum(1 for a in asked if a) / len(asked)
        entry["sentences per question"] = float(np.mean(asked))
        entry["estimated CPU ms per question"] = entry["sentences per question"] * cpu_ms
        results.append(entry)
    results.sort(key=lambda e: -e["tuning pooled"])
    columns = ["tuning pooled"] + [f"{s} {p}" for s, p in names]
    print("| m | margin | W | openings | " + " | ".join(columns)
          + " | share asking | sentences / question | est. CPU ms |")
    print("|" + "---|" * (len(columns) + 7))
    today = next(e for e in results if e["m"] == 0)
    # Today, the best setting (on the tuning part) of each m, then the best 15 overall.
    best_each = [next(e for e in results if e["m"] == size and e["openings"] == openings)
                 for size in SIZES for openings in (False, True)]
    shown = [today] + best_each + [e for e in results[:15]
                                   if e not in best_each and e is not today]
    for entry in shown:
        print(f"| {entry['m']} | {entry['margin']} | {entry['weight']} | "
              f"{'yes' if entry['openings'] else 'no'} | "
              + " | ".join(f"{entry[c]:.4f}" for c in columns)
              + f" | {entry['share asking the model']:.3f} | "
              f"{entry['sentences per question']:.2f} | "
              f"{entry['estimated CPU ms per question']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({
            "command": sys.argv, "cpu_ms_per_sentence": cpu_ms,
            "questions": {f"{s} {p}": counts[s, p] for s, p in names},
            "right documents": {f"{s} {p}": len(parts[s, p]) for s, p in names},
            "results": results}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
