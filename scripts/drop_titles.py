"""Copies of SQuAD-format files with every article's `title` removed, under the same
names in another folder: `qa eval` on them indexes the paragraphs with no title at all
(neither embedded, nor searched, nor read by the re-rank), the "no titles" baseline of
README Quality, "Article titles in `qa eval`".

    .venv/bin/python scripts/drop_titles.py benchmarks/news/news_dev.json --out DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True, help="folder for the copies")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.files:
        whole = json.loads(path.read_text(encoding="utf-8-sig"))
        untitled = {**whole, "data": [{k: v for k, v in article.items() if k != "title"}
                                      for article in whole["data"]]}
        target = args.out / path.name
        if target.resolve() == path.resolve():
            raise SystemExit(f"{target} would overwrite its source")
        target.write_text(json.dumps(untitled, ensure_ascii=False), encoding="utf-8")
        print(f"{target}: {len(untitled['data'])} articles, titles removed")


if __name__ == "__main__":
    main()
