"""Write the answers to a list of questions as JSON lines (all of `/api/ask`'s JSON but
`took_ms`), to check that a speed change leaves every answer as it was: run it with two
checkouts on the same index and compare the files byte for byte.

    QA_MODEL_CACHE=… .venv/bin/python CHECKOUT/scripts/dump_answers.py \
        --config C --questions Q.jsonl [--source S] [--top-k 5] --out A.jsonl
    cmp A.jsonl B.jsonl

The checkout the script is run from answers (script_setup puts its `qa` first on
sys.path, whatever PYTHONPATH says).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa.config import load_config, with_model_cache_from_environment
from qa.filters import NO_FILTERS, Filters
from qa.web import open_retriever


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True,
                        help="JSON lines with a 'question' field")
    parser.add_argument("--source", help="filter every question to this source")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    config = with_model_cache_from_environment(load_config(args.config))
    retriever = open_retriever(config)
    filters = Filters(sources=(args.source,)) if args.source else NO_FILTERS
    lines = args.questions.read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.strip()]
    with args.out.open("w", encoding="utf-8") as out:
        for question in questions:
            answer = retriever.ask(question, top_k=args.top_k, filters=filters).to_dict()
            del answer["took_ms"]
            out.write(json.dumps(answer, ensure_ascii=False) + "\n")
    print(f"{len(questions)} answers from {sys.modules['qa'].__file__} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
