"""Two or more `qa eval --json` results side by side, as one Markdown table.

Each run is given as LABEL=FILE; rows are (file, mode) in the first run's order and
the columns are each chosen metric under each label, so that a before/after change
reads across a line. A file asked in a run under another pool shows as "–".
`--combine WHOLE=PART+PART` adds a row for a file asked in parts (the halves of
scripts/split_by_article.py): each metric weighted by the parts' question counts
(exact for sentence@1 when every question has a gold answer, as in CMRC).

    .venv/bin/python scripts/eval_side_by_side.py before=artifacts/eval_cmrc_before.json \\
        after=artifacts/eval_cmrc_after.json --metrics recall@1 recall@5 sentence@1 \\
        --combine cmrc2018_dev.json=cmrc2018_dev_even.json+cmrc2018_dev_odd.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_METRICS = ("recall@1", "recall@5", "sentence@1")


def read_runs(specs: list[str]) -> dict[str, dict[tuple[str, str], dict]]:
    """label -> (file, mode) -> the result row, from LABEL=FILE arguments."""
    runs = {}
    for spec in specs:
        label, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"expected LABEL=FILE, got {spec!r}")
        rows = json.loads(Path(path).read_text(encoding="utf-8"))["results"]
        runs[label] = {(row["file"], row["mode"]): row for row in rows}
    return runs


def combine(rows: dict[tuple[str, str], dict], whole: str, parts: list[str]) -> None:
    """Add (whole, mode) rows to `rows`: the parts' metrics weighted by their questions."""
    for mode in dict.fromkeys(m for _, m in rows):
        found = [rows[(part, mode)] for part in parts if (part, mode) in rows]
        if len(found) != len(parts):
            continue
        count = sum(r["questions"] for r in found)
        merged: dict = {"file": whole, "mode": mode, "questions": count}
        for metric, value in found[0].items():
            if isinstance(value, float) and all(r.get(metric) is not None for r in found):
                merged[metric] = sum(r[metric] * r["questions"] for r in found) / count
        rows[(whole, mode)] = merged


def table(runs: dict[str, dict[tuple[str, str], dict]], metrics: list[str]) -> str:
    """The Markdown table: file, mode, questions, then each metric under each run."""
    labels = list(runs)
    header = ["file", "mode", "questions"] + [f"{m} {label}" for m in metrics for label in labels]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, first in runs[labels[0]].items():
        cells = [key[0], key[1], str(first["questions"])]
        for metric in metrics:
            for label in labels:
                value = runs[label].get(key, {}).get(metric)
                cells.append("–" if value is None else f"{value:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=FILE of a `qa eval --json` output")
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS))
    parser.add_argument("--combine", action="append", default=[],
                        help="WHOLE=PART+PART: a row for a file asked in parts")
    args = parser.parse_args()
    runs = read_runs(args.runs)
    for spec in args.combine:
        whole, _, parts = spec.partition("=")
        for rows in runs.values():
            combine(rows, whole, parts.split("+"))
    print(table(runs, args.metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
