"""Kill every kind of index writer with SIGKILL at random moments and check the index.

    .venv/bin/python scripts/crash_test.py --kills 8 [--seed 1] [--json artifacts/crash.json]

For each phase (first build, sync of changes, rebuild, add, remove, and the write API
under `qa serve`) it runs the real `qa` command in a child process (with the test suite's
fake embedder, slowed to 20 ms a batch of 8), kills it after a random time within the
phase's measured length, then checks: the index opens and `qa check` finds nothing wrong,
every acknowledged change is present, no document holds a version no writer wrote, and
the same command run again finishes with a clean index and no leftovers.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import script_setup  # noqa: E402,F401 - this checkout's qa first on sys.path

from tests.crash_harness import PHASES, api_kill_cycle, kill_cycle, summary  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=8, help="kills per phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.monotonic()

    def report(kill) -> None:
        state = "ok" if not kill.problems else "; ".join(kill.problems)
        print(f"{kill.phase:28} killed at {kill.after:5.2f} s after start-up, "
              f"{kill.acknowledged:3} acknowledged: {state}", flush=True)

    kills = []
    with tempfile.TemporaryDirectory(prefix="qa-crash-") as folder:
        for phase in PHASES:
            kills += kill_cycle(Path(folder), phase, args.kills, rng, report)
        kills += api_kill_cycle(Path(folder), args.kills, rng, report)
    result = summary(kills)
    print()
    print("| phase | kills counted | failures |")
    print("|---|---|---|")
    for phase, count in result["per_phase"].items():
        failures = sum(1 for p in result["problems"] if p[0] == phase)
        print(f"| {phase} | {count} | {failures} |")
    print(f"| all | {result['kills']} | {result['failed']} |")
    print(f"\n{time.monotonic() - started:.0f} s; command: {' '.join(sys.argv)}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, ensure_ascii=False, indent=2),
                                 encoding="utf-8")
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
