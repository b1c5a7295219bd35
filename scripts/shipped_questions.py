"""How often the passage holding the answer is at rank 1 / in the top 5, on the shipped corpus.

Runs the questions of a JSONL file ({"question", "answer", "doc_id", "lang"}) through
`qa ask --json --file` exactly as a user would, against the index `qa index` built,
and counts a hit when a passage of the right document contains the answer text.

    .venv/bin/python scripts/shipped_questions.py benchmarks/shipped_dev_questions.jsonl \
        [--config config.yaml] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("questions", type=Path)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--json", dest="json_out", type=Path)
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default=None)
    args = parser.parse_args()

    cases = [json.loads(line) for line in args.questions.read_text("utf-8").splitlines() if line]
    qa = Path(sys.executable).with_name("qa")
    started = time.perf_counter()
    result = subprocess.run(
        [str(qa), "ask", "--json", "--file", "-", "-k", "5", "--config", args.config]
        + (["--mode", args.mode] if args.mode else []),
        input="\n".join(c["question"] for c in cases) + "\n",
        capture_output=True, text=True, check=True, timeout=1800,
    )
    seconds = time.perf_counter() - started
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(cases), "one answer per question"

    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    misses = []
    for case, answer in zip(cases, answers, strict=True):
        ranks = [
            p["rank"] for p in answer["passages"]
            if p["citation"]["doc_id"] == case["doc_id"] and case["answer"] in p["text"]
        ]
        rank = ranks[0] if ranks else None
        for group in ("all", case["lang"]):
            tally[group][0] += 1
            tally[group][1] += rank == 1
            tally[group][2] += rank is not None
        if rank != 1:
            misses.append({"question": case["question"], "answer": case["answer"], "rank": rank,
                           "top": (answer["passages"] or [{"text": ""}])[0]["text"][:80]})

    print(f"{'set':<6}{'questions':>10}{'rank 1':>9}{'top 5':>8}")
    rows = []
    for group in ("all", "zh", "en"):
        n, first, top5 = tally[group]
        if n:
            print(f"{group:<6}{n:>10}{first / n:>9.3f}{top5 / n:>8.3f}")
            rows.append({"set": group, "questions": n, "rank1": first / n, "top5": top5 / n})
    print(f"({len(cases)} questions in {seconds:.1f} s, model load included)")
    if args.show_misses:
        for miss in misses:
            print(json.dumps(miss, ensure_ascii=False))
    if args.json_out:
        args.json_out.write_text(json.dumps({"results": rows, "misses": misses},
                                            ensure_ascii=False, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
