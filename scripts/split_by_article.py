"""Split a SQuAD-format file in two by article: even positions of its `data` list and
odd ones (the tuning and held-out halves used for the answering sentence).

`qa eval HALF_even.json HALF_odd.json` then indexes both halves as one pool (the same
paragraphs as the whole file) and reports each half on its own row.

    .venv/bin/python scripts/split_by_article.py ../shared/benchmarks/cmrc2018/cmrc2018_dev.json \
        --out artifacts/sent
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="folder for the two halves")
    args = parser.parse_args()
    whole = json.loads(args.file.read_text(encoding="utf-8-sig"))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, start in (("even", 0), ("odd", 1)):
        half = {**whole, "data": whole["data"][start::2]}
        target = args.out / f"{args.file.stem}_{name}.json"
        target.write_text(json.dumps(half, ensure_ascii=False), encoding="utf-8")
        questions = sum(len(p.get("qas", [])) for a in half["data"] for p in a["paragraphs"])
        print(f"{target}: {len(half['data'])} articles, {questions} questions")


if __name__ == "__main__":
    main()
