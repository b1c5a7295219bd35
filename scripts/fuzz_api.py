"""Schemathesis, all phases and checks, against the API over a real socket (cheroot, the
tiny test corpus, the fake embedder): the longer run behind tests/test_schema_fuzz.py.

    python scripts/fuzz_api.py --max-examples 200 --seed 1

Prints schemathesis' report; exits non-zero if it found a failure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import script_setup  # noqa: E402,F401 - this checkout's qa first on sys.path

from qa.web import create_app  # noqa: E402
from qa.web.server import ServerThread, make_server  # noqa: E402
from tests.test_api import tiny_retriever  # noqa: E402

KEY = "fuzz-key-0123456789"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phases", default="examples,coverage,fuzzing")
    args = parser.parse_args()
    # A key, so that the write routes are fuzzed too (without one they answer 403).
    os.environ["QA_API_KEYS"] = KEY
    with tempfile.TemporaryDirectory() as folder:
        retriever = tiny_retriever(Path(folder))
        # The first question builds the English bridge's tables (seconds): not a finding.
        retriever.ask("warm up")
        server = ServerThread(make_server(create_app(retriever.config, retriever),
                                          "127.0.0.1", 0, 4)).start()
        try:
            command = [str(Path(sys.executable).with_name("st")), "run",
                       f"{server.url}/api/openapi.json", "--checks", "all",
                       "--phases", args.phases, "--max-examples", str(args.max_examples),
                       "--seed", str(args.seed), "--generation-deterministic",
                       "--workers", "1", "-H", f"Authorization: Bearer {KEY}"]
            return subprocess.run(command, check=False).returncode
        finally:
            server.stop()
            retriever.engine.close()


if __name__ == "__main__":
    raise SystemExit(main())
