"""What verifying a store costs: builds a synthetic store of N chunks (random text and
384-dimensional vectors) and times each check that could run when an index is opened.

    python scripts/measure_open_checks.py --chunks 200000 --json open_checks.json

Prints a Markdown table and writes JSON. The store goes in a temporary folder (removed).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa.index.store import STORE_FILE, StoreWriter, connect, create_store, transaction
from qa.index.verify import verify_store
from qa.ingest.chunker import Chunk
from qa.ingest.document import Block, Document

WORDS = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]


def build(path: Path, chunks: int, dimension: int, per_document: int = 20) -> None:
    create_store(path, {"dimension": dimension})
    rng = random.Random(0)
    vectors = np.random.default_rng(0).standard_normal((per_document, dimension)).astype(
        np.float32)
    db = connect(path, readonly=False)
    documents = chunks // per_document
    for start in range(0, documents, 500):
        with transaction(db):
            writer = StoreWriter(db)
            for number in range(start, min(documents, start + 500)):
                doc_id = f"d{number}"
                texts = ["".join(rng.choices(WORDS, k=150)) for _ in range(per_document)]
                document = Document(doc_id=doc_id, path=doc_id,
                                    blocks=tuple(Block(t, False) for t in texts), title=doc_id)
                parts = [Chunk(doc_id, i, t, None, i, 0, len(t), i)
                         for i, t in enumerate(texts)]
                tokens = [[t[j:j + 2] for j in range(0, 40, 2)] for t in texts]
                writer.put_document(document, parts, vectors, tokens, doc_id)
            writer.commit_generation()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / STORE_FILE
        build_seconds = timed(lambda: build(path, args.chunks, args.dimension))
        size = path.stat().st_size
        rows = []
        for name, action in (
            ("open + verify_store (runs at open)",
             lambda: verify_store(connect(path, readonly=True), path)),
            ("PRAGMA quick_check", lambda: _pragma(path, "quick_check")),
            ("PRAGMA integrity_check", lambda: _pragma(path, "integrity_check")),
        ):
            _pragma(path, "schema_version")  # warm the page cache as a running host would
            rows.append({"check": name, "seconds": round(timed(action), 3)})
    result = {"chunks": args.chunks, "bytes": size, "build_seconds": round(build_seconds, 1),
              "checks": rows}
    print(f"{args.chunks} chunks, {size / 1e6:.0f} MB\n")
    print("| check | seconds |\n|---|---|")
    for row in rows:
        print(f"| {row['check']} | {row['seconds']} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


def _pragma(path: Path, name: str) -> None:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute(f"PRAGMA {name}").fetchall()
    finally:
        db.close()


if __name__ == "__main__":
    main()
