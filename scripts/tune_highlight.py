"""Tune the answering-sentence scorer (qa.highlight) on SQuAD-format files, offline.

`dump` builds one pool of a file's paragraphs (embeddings come from the cache that
`qa eval` fills), asks every question in hybrid mode and keeps, per question, the
rank-1 passage, every candidate (document, chunk ordinal, score), the texts of the
rank-1 document's candidate chunks, the question's idf weights and the gold answers
(JSON lines). `score` then lets qa.passage_choice pick the chunk that stands for the
rank-1 document (`--rank-1-chunk`: keep the rank-1 chunk), marks its sentence with
the current qa.highlight, and prints sentence@1 on the tuning half and the held-out
half of each file:
articles at even positions of the file's `data` tune, odd ones are held out.
`--set NAME=VALUE` overrides a qa.highlight or qa.passage_choice constant (e.g.
CUE_WEIGHT=0.2, POOL_LIMIT=1);
`--before` marks sentences the way the product did before issue 9 (most idf
weight of the question's tokens, then most character bigrams, NFKC only), for
the before/after table. Neither scorer here calls the model: where a passage
shares nothing with the question the first sentence is marked.

    .venv/bin/python scripts/tune_highlight.py dump cmrc2018_dev.json --out cmrc.jsonl
    .venv/bin/python scripts/tune_highlight.py score cmrc.jsonl --set CUE_WEIGHT=0
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa import highlight, passage_choice
from qa.answer_cues import question_kind
from qa.cli import cached, load_embedder
from qa.config import load_config
from qa.evaluation import read_squad, sentence_holds_answer
from qa.index.saved_index import build_index_from_documents, open_index
from qa.ingest.sentences import sentence_spans
from qa.retriever import Retriever
from qa.tokenizer import Tokenizer


def dump(path: Path, config_path: str, out: Path) -> None:
    config = load_config(config_path)
    evalset = read_squad([path])
    embedder = cached(load_embedder(config), config)
    with tempfile.TemporaryDirectory() as folder, out.open("w", encoding="utf-8") as sink:
        index_dir = Path(folder) / "index"
        build_index_from_documents(config, embedder, evalset.documents, index_dir)
        eval_config = config.replace(index_dir=index_dir)
        index = open_index(eval_config)
        retriever = Retriever(eval_config, index, embedder)
        vectors = embedder.embed_queries(
            [retriever.embedding_text(q.question) for q in evalset.questions])
        for n, (question, vector) in enumerate(zip(evalset.questions, vectors, strict=True)):
            with index.snapshot() as snapshot:
                query = retriever.prepare(question.question, vector=vector, snapshot=snapshot)
                ranked = retriever.rank(query, "hybrid", 50, snapshot)
                chunks = snapshot.chunks([c.chunk_id for c in ranked])
            top = chunks[ranked[0].chunk_id]
            article = int(question.paragraph_id.rsplit("-", 2)[1])
            sink.write(json.dumps({
                "question": question.question, "answers": question.answers,
                "paragraph_id": question.paragraph_id, "held_out": article % 2 == 1,
                "right": top.doc_id == question.paragraph_id, "text": top.text,
                "idf": query.idf,
                # Every candidate: its document, its place in it, its fused score.
                "ranked": [[chunks[c.chunk_id].doc_id, chunks[c.chunk_id].ordinal,
                            round(c.score, 4)] for c in ranked],
                # Their cosine and BM25 scores, in the same order.
                "components": [[round(c.vector, 4), round(c.keyword, 4)] for c in ranked],
                # The texts of the candidates from the rank-1 document, in rank order.
                "top_doc": [chunks[c.chunk_id].text for c in ranked
                            if chunks[c.chunk_id].doc_id == top.doc_id],
            }, ensure_ascii=False) + "\n")
            if n % 500 == 0:
                print(f"{n}/{len(evalset.questions)}", file=sys.stderr)
        index.close()


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_LATIN_OR_NUMBER = re.compile(r"[a-z0-9][a-z0-9.%]*", re.IGNORECASE)
_QUESTION_WORDS = re.compile(r"什么|多少|哪些|哪个|哪里|哪儿|怎么|怎样|如何|为什么|是否|吗|呢")


def before_issue_9(question: str, idf: dict[str, float], tokenizer: Tokenizer, text: str):
    """The answering sentence as the product chose it before issue 9."""
    def nfkc(value: str) -> str:
        return unicodedata.normalize("NFKC", value).lower()

    terms: set[str] = set()
    folded_question = _QUESTION_WORDS.sub(" ", nfkc(question))
    for run in _CJK.findall(folded_question):
        if len(run) == 1:
            terms.add(run)
        terms.update(run[i : i + 2] for i in range(len(run) - 1))
    terms.update(_LATIN_OR_NUMBER.findall(folded_question))
    spans = []
    offset = 0
    for line in text.split("\n"):
        for start, end in sentence_spans(line):
            piece = line[start:end]
            left, right = len(piece) - len(piece.lstrip()), len(piece.rstrip())
            if right > left:
                spans.append((offset + start + left, offset + start + right))
        offset += len(line) + 1
    spans = spans or [(0, len(text))]
    scores = []
    for start, end in spans:
        tokens = set(tokenizer.tokens(text[start:end]))
        weight = sum(w for t, w in idf.items() if t in tokens)
        folded = nfkc(text[start:end])
        scores.append((weight, float(sum(len(t) for t in terms if t in folded))))
    return spans[max(range(len(spans)), key=lambda i: (scores[i], -i))]


def _chosen(row: dict, tokenizer: Tokenizer) -> tuple[str, tuple[int, int]]:
    """The passage qa.passage_choice lets stand for the rank-1 document (among its
    candidate chunks, as the product chooses it), and its answering sentence."""
    top_doc = row["ranked"][0][0]
    # Cosine and keyword scores of the candidates (dumps before issue 9's third step
    # lack them: 0).
    components = row.get("components") or [[0.0, 0.0]] * len(row["ranked"])
    ranks = [(o, s, v, k) for (doc, o, s), (v, k) in zip(row["ranked"], components, strict=True)
             if doc == top_doc]
    found = [(SimpleNamespace(doc_id=top_doc, ordinal=o, text=text),
              SimpleNamespace(score=s, vector=v, keyword=k))
             for (o, s, v, k), text in zip(ranks, row["top_doc"], strict=True)]
    order, scored = passage_choice.stand_ins(row["question"], row["idf"], tokenizer, found,
                                             [top_doc])
    return found[order[0]][0].text, scored[order[0]][0]


def score(paths: list[Path], user_words: list[str], show: int, before: bool = False,
          choose: bool = False) -> None:
    tokenizer = Tokenizer(user_words)
    for path in paths:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        counts: Counter[tuple[bool, str]] = Counter()
        misses = []
        for row in rows:
            part = "held out" if row["held_out"] else "tuning"
            counts[part, "questions"] += 1
            if not row["right"] or not row["answers"]:
                continue
            counts[part, "right"] += 1
            text = row["text"]
            if before:
                start, end = before_issue_9(row["question"], row["idf"], tokenizer, text)
            elif choose:
                text, (start, end) = _chosen(row, tokenizer)
            else:
                start, end = highlight.answer_spans(row["question"], row["idf"], tokenizer,
                                                    [text])[0]
            # The passage shown for the rank-1 document (chosen among its chunks).
            counts[part, "in passage"] += sentence_holds_answer(text, tuple(row["answers"]))
            counts[part, "in candidates"] += any(
                sentence_holds_answer(t, tuple(row["answers"])) for t in row["top_doc"])
            hit = sentence_holds_answer(text[start:end], tuple(row["answers"]))
            counts[part, "sentence"] += hit
            kind = question_kind(row["question"]) or "other"
            counts[part, f"{kind} questions"] += 1
            counts[part, f"{kind} hits"] += hit
            if not hit and not row["held_out"]:
                misses.append((row, text[start:end]))
        for part in ("tuning", "held out"):
            n = counts[part, "questions"] or 1
            kinds = " ".join(
                f"{k}:{counts[part, f'{k} hits']}/{counts[part, f'{k} questions']}"
                for k in ("time", "number", "who", "place", "other"))
            print(f"{path.name} {part}: questions {counts[part, 'questions']}"
                  f"  recall@1 {counts[part, 'right'] / n:.4f}"
                  f"  answer in passage@1 {counts[part, 'in passage'] / n:.4f}"
                  f"  in its candidates {counts[part, 'in candidates'] / n:.4f}"
                  f"  sentence@1 {counts[part, 'sentence'] / n:.4f}"
                  f"  ratio {counts[part, 'sentence'] / max(counts[part, 'right'], 1):.4f}"
                  f"  [{kinds}]")
        for row, marked in misses[:show]:
            print("Q:", row["question"], "A:", row["answers"][0])
            print("   marked:", marked)
            print("   passage:", row["text"].replace("\n", " / "))


def set_constants(settings: list[str], modules) -> None:
    """Apply `--set NAME=VALUE` overrides to the first of `modules` with that constant,
    the value cast to the constant's type."""
    for setting in settings:
        name, value = setting.split("=", 1)
        module = next((m for m in modules if hasattr(m, name)), None)
        if module is None:
            raise SystemExit(f"none of {', '.join(m.__name__ for m in modules)} has {name}")
        setattr(module, name, type(getattr(module, name))(value))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dumping = commands.add_parser("dump")
    dumping.add_argument("file", type=Path)
    dumping.add_argument("--out", type=Path, required=True)
    dumping.add_argument("--config", default="config.yaml")
    scoring = commands.add_parser("score")
    scoring.add_argument("files", nargs="+", type=Path)
    scoring.add_argument("--config", default="config.yaml")
    scoring.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    scoring.add_argument("--show", type=int, default=0, help="print this many tuning misses")
    scoring.add_argument("--before", action="store_true",
                         help="mark sentences as the product did before issue 9")
    scoring.add_argument("--rank-1-chunk", action="store_true",
                         help="mark the rank-1 chunk itself, without choosing among the "
                         "document's chunks (as before the passage choice)")
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.file, args.config, args.out)
        return
    set_constants(args.set, (highlight, passage_choice))
    score(args.files, list(load_config(args.config).keywords.user_words), args.show,
          args.before, choose=not args.rank_1_chunk)


if __name__ == "__main__":
    main()
