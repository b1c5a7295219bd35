"""Check qa.normalize's shortcuts against OpenCC on real text, and time them.

`fold` skips OpenCC's t2s for text holding no character or phrase it changes; this
counts the texts where that gives anything but OpenCC's own result (it should be 0).
`fold_quickly` converts characters one by one; this counts the texts and characters
where it differs from `fold`. Texts: every context and question of the SQuAD files
given, the shipped corpus's lines and the shipped development questions.

    .venv/bin/python scripts/check_fold.py ../shared/benchmarks/cmrc2018/cmrc2018_dev.json \\
        ../shared/benchmarks/drcd/DRCD_dev.json benchmarks/news/news_dev.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import unicodedata
from pathlib import Path

import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa.normalize import _fold, _to_simplified, fold_quickly

REPO = Path(__file__).resolve().parent.parent


def texts_of(paths: list[Path]) -> dict[str, list[str]]:
    """Texts by where they come from."""
    out: dict[str, list[str]] = {}
    for path in paths:
        for article in json.loads(path.read_text(encoding="utf-8-sig"))["data"]:
            for paragraph in article["paragraphs"]:
                out.setdefault(path.name, []).append(paragraph["context"])
                out[path.name].extend(qa["question"] for qa in paragraph.get("qas", []))
    for file in sorted((REPO / "corpus").rglob("*")):
        if file.is_file() and not file.name.startswith("."):
            out.setdefault("corpus", []).extend(
                file.read_text(encoding="utf-8", errors="replace").splitlines())
    questions = REPO / "benchmarks" / "shipped_dev_questions.jsonl"
    out["shipped questions"] = [json.loads(line)["question"]
                                for line in questions.read_text("utf-8").splitlines() if line]
    return out


def through_opencc(text: str) -> str:
    return _to_simplified().convert(unicodedata.normalize("NFKC", text)).lower()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    print("| texts | count | fold ≠ OpenCC | fold_quickly ≠ fold (texts / characters) "
          "| ms per text: OpenCC / fold / fold_quickly |")
    print("|---|---|---|---|---|")
    bad = 0
    for name, texts in texts_of(args.files).items():
        timings = []
        results = []
        for fn in (through_opencc, _fold, fold_quickly):
            started = time.perf_counter()
            results.append([fn(t) for t in texts])
            timings.append((time.perf_counter() - started) * 1000 / max(1, len(texts)))
        reference, folded, quick = results
        wrong = sum(a != b for a, b in zip(folded, reference, strict=True))
        bad += wrong
        differ = [(a, b) for a, b in zip(quick, folded, strict=True) if a != b]
        characters = sum(sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))
                         for a, b in differ)
        print(f"| {name} | {len(texts)} | {wrong} | {len(differ)} / {characters} | "
              + " / ".join(f"{t:.3f}" for t in timings) + " |")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
