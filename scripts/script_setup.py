"""What the measuring scripts share at start: a header naming the run, and the model.

    from script_setup import announce, with_embedder
"""

from __future__ import annotations

import os
import platform
import sys
import time

from qa.cli import cached, load_embedder
from qa.config import Config, with_model_cache_from_environment
from qa.embedder import Embedder


def announce() -> None:
    """The command, the machine and its load, and the start time, on stderr."""
    print(f"$ {' '.join(sys.argv)}\n{platform.node()}: {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}, started {time.strftime('%H:%M:%S %Z')}", file=sys.stderr)


def with_embedder(config: Config) -> tuple[Config, Embedder]:
    """`config` with the model folder of QA_MODEL_CACHE if set, and its model behind the
    embedding cache."""
    config = with_model_cache_from_environment(config)
    return config, cached(load_embedder(config), config)
