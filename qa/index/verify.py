"""The cheap checks run every time a store is opened, so that a damaged index fails at
once with a message instead of answering wrongly (or with a 500) later.

They read the schema, the `meta` records, the counts and one vector: a few
milliseconds even on a large store (scripts/measure_open_checks.py measures them
against SQLite's `quick_check`, which reads every page and so is left to `qa check`).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from qa.errors import IndexDamagedError

REQUIRED_TABLES = ("meta", "documents", "chunks", "vectors", "removed_chunks", "keywords")
REQUIRED_META = ("settings", "generation", "documents", "chunks")
# Settings that must agree between the store's own record and manifest.json.
SHARED_SETTINGS = ("model", "dimension", "query_prompt", "passage_prompt", "chunking")

REBUILD = "run `qa check` to see what is wrong, then `qa check --repair` or " \
          "`qa index --rebuild`"


def verify_store(db: sqlite3.Connection, path: Path,
                 manifest: dict[str, Any] | None = None) -> None:
    """Raise IndexDamagedError naming the first problem found; reads only a few pages."""
    try:
        _verify(db, path, manifest)
    except sqlite3.DatabaseError as exc:
        raise IndexDamagedError(f"the index store {path} is unreadable ({exc}); {REBUILD}"
                                ) from None


def _verify(db: sqlite3.Connection, path: Path, manifest: dict[str, Any] | None) -> None:
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    if not tables:
        raise IndexDamagedError(f"the index store {path} is empty (no tables); {REBUILD}")
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise IndexDamagedError(f"the index store {path} lacks the table(s) "
                                f"{', '.join(missing)}; {REBUILD}")
    meta: dict[str, Any] = {}
    for key, value in db.execute("SELECT key, value FROM meta"):
        try:
            meta[key] = json.loads(value)
        except (TypeError, ValueError):
            raise IndexDamagedError(f"the index store {path} has an unreadable {key!r} "
                                    f"record; {REBUILD}") from None
    absent = [k for k in REQUIRED_META if k not in meta]
    if absent:
        raise IndexDamagedError(f"the index store {path} lacks its {', '.join(absent)} "
                                f"record(s); {REBUILD}")
    for key in ("generation", "documents", "chunks"):
        if not isinstance(meta[key], int) or isinstance(meta[key], bool) or meta[key] < 0:
            raise IndexDamagedError(f"the index store {path} records {key} = {meta[key]!r}; "
                                    f"{REBUILD}")
    settings = meta["settings"]
    if manifest is not None and isinstance(settings, dict):
        for key in SHARED_SETTINGS:
            if key in settings and settings[key] != manifest.get(key):
                raise IndexDamagedError(
                    f"manifest.json says {key} = {manifest.get(key)!r} but the store "
                    f"{path} was built with {settings[key]!r}; {REBUILD}")
    chunks = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    if chunks != meta["chunks"]:
        raise IndexDamagedError(f"the index store {path} holds {chunks} chunks but records "
                                f"{meta['chunks']}; {REBUILD}")
    row = db.execute("SELECT length(vector) FROM vectors ORDER BY chunk_id DESC LIMIT 1"
                     ).fetchone()
    dimension = (manifest or {}).get("dimension") or (settings or {}).get("dimension")
    if row is not None and isinstance(dimension, int) and row[0] != 4 * dimension:
        raise IndexDamagedError(f"the vectors in {path} are not {dimension}-dimensional; "
                                f"{REBUILD}")
