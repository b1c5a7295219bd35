"""The folder of `qa serve --workers`' shared metrics files (qa.web.metrics).

The supervisor makes it and removes it when it exits. A supervisor that is killed
(SIGKILL, a crash, the machine's OOM killer) cannot, so the next one that starts removes
what such supervisors left: only folders it can tell are ours and abandoned (named by
`make_metrics_folder`, owned by this user, their supervisor's pid no longer running,
holding nothing but prometheus_client's `*.db` files).
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

PREFIX = "qa-metrics-"
# qa-metrics-<supervisor pid>-<mkdtemp's 8 random characters>
FOLDER_NAME = re.compile(rf"{PREFIX}(\d+)-[a-z0-9_]{{8}}")
# prometheus_client's multiprocess files: counter_<pid>.db, gauge_livesum_<pid>.db, ...
METRICS_FILE = re.compile(r"[a-z_]+_\d+\.db")


def make_metrics_folder(parent: Path | None = None) -> Path:
    """A new private folder for this process's workers, named after this process's pid."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))


def remove_stale_metrics_folders(parent: Path | None = None) -> list[Path]:
    """Remove the metrics folders of this user's supervisors that are no longer running,
    in `parent` (the temporary folder); returns the folders removed."""
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    try:
        entries = [entry for entry in parent.iterdir() if entry.name.startswith(PREFIX)]
    except OSError:
        return removed
    for folder in entries:
        match = FOLDER_NAME.fullmatch(folder.name)
        if match is None or not _abandoned(folder, int(match.group(1))):
            continue
        try:
            files = list(folder.iterdir())
            if not all(METRICS_FILE.fullmatch(f.name) and stat.S_ISREG(f.lstat().st_mode)
                       for f in files):
                logger.warning("left %s: it holds files that are not metrics files", folder)
                continue
            for file in files:
                file.unlink()
            folder.rmdir()
        except OSError as exc:  # another supervisor removing it too, or not ours to remove
            logger.warning("could not remove %s: %s", folder, exc)
            continue
        removed.append(folder)
    return removed


def _abandoned(folder: Path, pid: int) -> bool:
    """A real folder of this user's whose supervisor is gone."""
    try:
        info = folder.lstat()
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # a live process of another user's
        return False
    return False  # still running (or its pid taken by another process: then kept for now)
