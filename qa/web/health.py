"""Whether the index being served is still whole, for /api/health and /metrics.

A file damaged under a running server (a disk error, a careless copy) may not show in
the connections it already has open, so the check opens the store afresh and runs the
cheap verification that opening an index runs (qa.index.verify). Its result is kept
for a moment, so that a busy health probe does not become load.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

from qa.errors import QAError
from qa.index.manifest import read_manifest
from qa.index.store import STORE_FILE, connect
from qa.index.verify import verify_store

KEEP_SECONDS = 2.0


@dataclass(frozen=True)
class IndexHealth:
    ok: bool
    reason: str
    status: dict[str, Any]


class HealthCheck:
    """Checks an engine's store at most every KEEP_SECONDS."""

    def __init__(self, engine: Any):
        self.engine = engine
        self._lock = threading.Lock()
        self._last: tuple[float, IndexHealth] | None = None

    def __call__(self) -> IndexHealth:
        with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] > KEEP_SECONDS:
                self._last = (now, self._check())
            checked = self._last[1]
        if not checked.ok:
            return checked
        # The verification is kept for a moment; the counts and generation are always
        # current (they are one cheap read).
        try:
            return IndexHealth(True, "", self.engine.status())
        except (QAError, sqlite3.DatabaseError, OSError) as exc:
            return IndexHealth(False, _reason(exc), {})

    def _check(self) -> IndexHealth:
        try:
            status = self.engine.status()
        except (QAError, sqlite3.DatabaseError, OSError) as exc:
            return IndexHealth(False, _reason(exc), {})
        store_dir = getattr(self.engine, "store_dir", None)
        if store_dir is None:  # another engine: its status is all there is to ask
            return IndexHealth(True, "", status)
        try:
            manifest = read_manifest(store_dir)
            db = connect(store_dir / STORE_FILE, readonly=True)
            try:
                verify_store(db, store_dir / STORE_FILE, manifest)
            finally:
                db.close()
        except (QAError, sqlite3.DatabaseError, OSError) as exc:
            return IndexHealth(False, _reason(exc), status)
        return IndexHealth(True, "", status)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, QAError):
        return str(exc)
    return f"the index is unreadable ({exc}); run `qa check` to see what is wrong"
