"""The index folder on disk: which store is live, the writer lock, and crash leftovers.

    embeddings/index/
      CURRENT              names the live store folder; replaced atomically
      writer.lock          held (flock) by whoever writes; the kernel frees it on a crash
      store-<stamp>/       manifest.json, chunks.sqlite (+ WAL), vectors-<generation>.faiss

A rebuild fills a new store folder and then points CURRENT at it with one rename, so
there is never a moment without a complete index. Anything else in the folder (a store
folder CURRENT does not name, temporary files) is a leftover of an interrupted run and
is removed by the next writer. Folders of the old one-folder layout
(`.index.building-*`, `.index.old-*` beside the index) are removed too.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qa.errors import IndexDamagedError, IndexLockedError, IndexMissingError, QAError

logger = logging.getLogger(__name__)

POINTER_FILE = "CURRENT"
LOCK_FILE = "writer.lock"
STORE_PREFIX = "store-"
LEGACY_MANIFEST = "manifest.json"


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never a mix."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """fsync a folder, so that a rename in it survives a power cut."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class IndexFolder:
    """One index folder and the rules for changing it safely."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def pointer(self) -> Path:
        return self.path / POINTER_FILE

    def is_legacy(self) -> bool:
        """True for an index of the old layout (files directly in the folder, no CURRENT)."""
        return (self.path / LEGACY_MANIFEST).is_file() and not self.pointer.exists()

    def current_store(self) -> Path | None:
        """The live store folder, or None if no index was ever completed here."""
        try:
            name = self.pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexDamagedError(f"cannot read {self.pointer} ({exc.strerror or exc}); "
                                    "check its permissions, or run `qa index --rebuild`"
                                    ) from None
        except UnicodeDecodeError:
            name = "<not text>"
        if not name.startswith(STORE_PREFIX) or "/" in name or not (self.path / name).is_dir():
            raise IndexDamagedError(
                f"{self.pointer} names {name[:60]!r}, which is not a store folder here; "
                "run `qa index --rebuild`"
            )
        return self.path / name

    def require_store(self) -> Path:
        """The live store folder; says what to run if there is none."""
        if self.is_legacy():
            raise IndexMissingError(
                f"the index at {self.path} has the old single-folder format; run `qa index` "
                "to convert it (vectors come from the embedding cache)"
            )
        store = self.current_store()
        if store is None:
            raise IndexMissingError(f"no index at {self.path}; run `qa index` to build it")
        return store

    def new_store_folder(self) -> Path:
        """A fresh, empty store folder (not live until `make_current`)."""
        self.path.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        folder = self.path / f"{STORE_PREFIX}{stamp}-{secrets.token_hex(3)}"
        folder.mkdir()
        return folder

    def make_current(self, store: Path) -> None:
        """Point CURRENT at `store` in one atomic rename."""
        write_atomically(self.pointer, (store.name + "\n").encode("utf-8"))
        logger.info("index %s now serves %s", self.path, store.name)

    def writer_lock(self, wait_seconds: float = 30.0):
        """Hold the writer lock; waits up to `wait_seconds` for another writer to finish."""
        self.path.mkdir(parents=True, exist_ok=True)
        return hold_lock(self.path / LOCK_FILE, f"the index at {self.path}", wait_seconds)

    def leftovers(self) -> list[Path]:
        """Files and folders that an interrupted run left behind."""
        found: list[Path] = []
        live = None
        try:
            live = self.current_store()
        except QAError:
            return found  # a damaged pointer: never delete stores we cannot tell apart
        if self.path.is_dir():
            for entry in self.path.iterdir():
                if entry.name.startswith(STORE_PREFIX) and entry != live:
                    # A store that never became live, or one a rebuild replaced.
                    found.append(entry)
                elif ".tmp-" in entry.name:
                    found.append(entry)
        if live is not None:
            found.extend(p for p in live.iterdir() if ".tmp-" in p.name)
        if self.path.parent.is_dir():
            for pattern in (f".{self.path.name}.building-*", f".{self.path.name}.old-*"):
                found.extend(self.path.parent.glob(pattern))
        return sorted(found)

    def remove_leftovers(self) -> list[Path]:
        """Delete what `leftovers` finds; call with the writer lock held."""
        removed = self.leftovers()
        for path in removed:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            logger.info("removed leftover %s", path)
        return removed

    def remove_legacy_files(self) -> None:
        """Delete the files of the old single-folder layout once a store is live."""
        for name in (LEGACY_MANIFEST, "vectors.faiss", "chunks.sqlite"):
            (self.path / name).unlink(missing_ok=True)


@contextmanager
def hold_lock(path: Path, what: str, wait_seconds: float = 30.0) -> Iterator[None]:
    """Hold an exclusive flock on `path` for the block; waits up to `wait_seconds` for
    another writer to finish. The kernel releases an flock when its holder dies, so a
    crashed writer never leaves `what` locked."""
    handle = open(path, "a+")  # noqa: SIM115 - held for the block
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _lock_holder(handle)
                    raise IndexLockedError(
                        f"another writer{holder} is changing {what}; "
                        "try again when it has finished"
                    ) from None
                time.sleep(0.05)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def _lock_holder(handle) -> str:
    try:
        handle.seek(0)
        pid = handle.read().strip()
    except OSError:
        return ""
    return f" (process {pid})" if pid.isdigit() else ""
