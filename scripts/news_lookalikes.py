"""Look-alike reports for a news set: each article rewritten about other places with other
figures, as distractors without questions (a stress test of telling near-identical
reports apart).

Local news repeats itself: the same kind of report (an approval, a season's figures, a
new hospital campus) is published for city after city in nearly the same words. For
every article of the input files this writes `--copies` look-alikes in which every
fictional place name of the set is replaced by a new one (each copy its own block of
new names, so distinct places stay distinct and no look-alike is about a place the
set's questions ask about) and every figure that is not a date or a
year has its digits shifted (186.4亿元 -> 297.5亿元). Titles change the same way;
paragraphs stay paragraphs; no question is kept. Deterministic.

    .venv/bin/python scripts/news_lookalikes.py benchmarks/news/news_dev_paragraphs.json \\
        benchmarks/news/news_heldout_paragraphs.json --out benchmarks/news/news_lookalikes.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

# The set's fictional places (benchmarks/news/README.md), the ones that recur most.
PLACES = ("青禾", "宁远", "东陵", "江口", "清溪", "江陵", "西河", "金溪", "临川", "南浦",
          "石塘", "北原", "海川", "云岭", "白石", "南岭", "三河", "云州", "云溪", "宁川",
          "瓯东", "北岗")
# The look-alikes' places: new two-character names (first × second character), none of
# them in PLACES, so a look-alike never claims to be about a place the set asks about.
_NEW_PLACES = tuple(a + b for a in "柳桐梅枫杏桂榆槐楠" for b in "阳川岭桥湾塘原浦")
_PLACE = re.compile("|".join(PLACES))
# A figure: digits with an optional decimal part, unless a date or year unit follows.
_FIGURE = re.compile(r"\d+(?:\.\d+)?(?![\d.]*[年月日号时])")


def rewrite(text: str, copy: int) -> str:
    """`text` about other places (copy `copy` takes its own block of _NEW_PLACES) with
    shifted figures."""

    def place(match: re.Match) -> str:
        return _NEW_PLACES[copy * len(PLACES) + PLACES.index(match.group())]

    def figure(match: re.Match) -> str:
        return "".join(str((int(ch) + copy + 1) % 10) if ch.isdigit() else ch
                       for ch in match.group())

    return _FIGURE.sub(figure, _PLACE.sub(place, text))


def lookalikes(articles: list[dict], copies: int) -> list[dict]:
    """`copies` rewritten versions of every article, without questions."""
    out = []
    for copy in range(copies):
        for article in articles:
            out.append({"title": rewrite(article.get("title", ""), copy),
                        "paragraphs": [{"context": rewrite(p["context"], copy), "qas": []}
                                       for p in article["paragraphs"]]})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=3)
    args = parser.parse_args()
    if not 1 <= args.copies <= len(_NEW_PLACES) // len(PLACES):
        parser.error(f"--copies must be from 1 to {len(_NEW_PLACES) // len(PLACES)}")
    articles = [a for path in args.files
                for a in json.loads(path.read_text(encoding="utf-8-sig"))["data"]]
    data = lookalikes(articles, args.copies)
    args.out.write_text(json.dumps({"version": "newsqa-lookalikes-1", "data": data},
                                   ensure_ascii=False, indent=1) + "\n", "utf-8")
    paragraphs = sum(len(a["paragraphs"]) for a in data)
    print(f"{args.out}: {len(data)} look-alike articles, {paragraphs} paragraphs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
