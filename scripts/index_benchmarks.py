"""Build an index of SQuAD-format benchmark files (each paragraph a document with its
article's title, as `qa eval` indexes them) into the `index_dir` of a config, for the
scripts that ask an index built once (scripts/ask_cpu_by_part.py with CMRC/DRCD
questions).

    QA_MODEL_CACHE=… .venv/bin/python scripts/index_benchmarks.py \
        ../shared/benchmarks/cmrc2018/cmrc2018_dev.json ../shared/benchmarks/drcd/DRCD_dev.json \
        --config C
"""

from __future__ import annotations

import argparse
from pathlib import Path

import script_setup  # noqa: F401 - this checkout's qa first on sys.path
from script_setup import announce, with_embedder

from qa.config import load_config
from qa.evaluation import read_squad
from qa.index.saved_index import build_index_from_documents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args()
    announce()
    config, embedder = with_embedder(load_config(args.config))
    if config.index_dir.exists():
        raise SystemExit(f"{config.index_dir} exists; remove it or set another index_dir")
    documents = read_squad(args.files).documents
    build_index_from_documents(config, embedder, documents, config.index_dir)
    print(f"{len(documents)} documents -> {config.index_dir}")


if __name__ == "__main__":
    main()
