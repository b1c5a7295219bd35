"""What the measuring scripts share at start: this checkout's `qa` ahead of any installed
copy, the benchmark files, a header naming the run, and the model.

    import script_setup  # noqa: F401 - this checkout's qa first on sys.path
    from script_setup import REPO, SETS, announce, with_embedder

A script run as `python scripts/x.py` has scripts/ first on sys.path, so this module is
found; importing it puts the checkout first, ahead of the `qa` installed in the
virtual environment (which may be another checkout's), with no PYTHONPATH needed. Every
script that imports `qa` imports this first.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parent.parent
if sys.path[:1] != [str(REPO)]:
    sys.path[:] = [str(REPO)] + [entry for entry in sys.path if entry != str(REPO)]

if TYPE_CHECKING:
    from qa.config import Config
    from qa.embedder import Embedder

BENCH = REPO.parent / "shared" / "benchmarks"
SETS = [BENCH / "cmrc2018/cmrc2018_dev.json", BENCH / "cmrc2018/cmrc2018_trial.json",
        BENCH / "drcd/DRCD_dev.json"]
"""CMRC 2018 dev and trial and DRCD dev: the questions and paragraphs of the benchmarks."""


def announce() -> None:
    """The command, the machine and its load, and the start time, on stderr."""
    print(f"$ {' '.join(sys.argv)}\n{platform.node()}: {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}, started {time.strftime('%H:%M:%S %Z')}", file=sys.stderr)


def with_embedder(config: Config) -> tuple[Config, Embedder]:
    """`config` with the model folder of QA_MODEL_CACHE if set, and its model behind the
    embedding cache."""
    from qa.cli import cached, load_embedder
    from qa.config import with_model_cache_from_environment

    config = with_model_cache_from_environment(config)
    return config, cached(load_embedder(config), config)
