"""Make every paragraph of a SQuAD-format file's contexts a context of its own.

A context that holds a whole article (paragraphs separated by newlines, as in
benchmarks/news/) becomes one `paragraphs` entry per non-empty line, in order; each
question goes to the paragraph that holds its first answer's `answer_start`, with
every answer's offset moved into that paragraph. The article keeps its title. Lines
without questions stay as contexts: they are the sibling paragraphs a question has
to be told apart from (same topic, same names), as in a news reading-comprehension
set whose contexts are paragraphs. Deterministic: the same input gives the same
bytes.

    .venv/bin/python scripts/split_paragraphs.py benchmarks/news/news_dev.json \\
        benchmarks/news/news_heldout.json --out benchmarks/news
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


class SplitError(ValueError):
    """An answer that no single paragraph holds."""


def paragraph_spans(context: str) -> list[tuple[int, int]]:
    """(start, end) of each non-empty line of `context`, stripped of surrounding spaces."""
    spans = []
    position = 0
    for line in context.split("\n"):
        stripped = line.strip()
        if stripped:
            start = position + line.index(stripped)
            spans.append((start, start + len(stripped)))
        position += len(line) + 1
    return spans


def split_article(article: dict) -> dict:
    """The article with one `paragraphs` entry per paragraph of each context."""
    entries = []
    for paragraph in article.get("paragraphs", []):
        context = paragraph["context"]
        spans = paragraph_spans(context)
        pieces = [{"context": context[s:e], "qas": []} for s, e in spans]
        for qa in paragraph.get("qas", []):
            answers = qa.get("answers") or []
            if not answers:
                raise SplitError(f"question {qa.get('id')} has no answer to place it by")
            first = answers[0]["answer_start"]
            where = next((n for n, (s, e) in enumerate(spans) if s <= first < e), None)
            if where is None:
                raise SplitError(f"question {qa.get('id')}: answer_start {first} is "
                                 "outside every paragraph")
            start, end = spans[where]
            moved = []
            for answer in answers:
                offset = answer["answer_start"] - start
                text = answer["text"]
                if not (0 <= offset and answer["answer_start"] + len(text) <= end
                        and pieces[where]["context"][offset:offset + len(text)] == text):
                    raise SplitError(f"question {qa.get('id')}: answer {text!r} is not "
                                     "inside the paragraph of the first answer")
                moved.append({**answer, "answer_start": offset})
            pieces[where]["qas"].append({**qa, "answers": moved})
        entries.extend(pieces)
    return {**article, "paragraphs": entries}


def split_file(data: dict) -> dict:
    """A whole SQuAD-format file, every article split."""
    return {**data, "data": [split_article(a) for a in data["data"]]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for FILE_paragraphs.json of each file")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        split = split_file(json.loads(path.read_text(encoding="utf-8-sig")))
        target = args.out / f"{path.stem}_paragraphs.json"
        target.write_text(json.dumps(split, ensure_ascii=False, indent=1) + "\n", "utf-8")
        paragraphs = [p for a in split["data"] for p in a["paragraphs"]]
        asked = sum(1 for p in paragraphs if p["qas"])
        questions = sum(len(p["qas"]) for p in paragraphs)
        print(f"{target}: {len(split['data'])} articles, {len(paragraphs)} paragraphs "
              f"({asked} with questions), {questions} questions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
