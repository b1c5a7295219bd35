"""Document ids: stable across runs and safe in a URL path segment."""

from __future__ import annotations

import re
from pathlib import Path

_NOT_URL_SAFE = re.compile(r"[^\w.~-]+")


def file_doc_id(path: Path, root: Path | None = None) -> str:
    """The id of a file's (first) document: its stem directly in `root` (or without a root),
    else its relative path made URL-safe ("2024/03/foo bar.txt" -> "2024-03-foo_bar")."""
    path = Path(path)
    if root is None:
        return path.stem
    try:
        relative = path.relative_to(root)
    except ValueError:
        try:
            relative = path.resolve().relative_to(Path(root).resolve())
        except ValueError:
            return path.stem
    if len(relative.parts) <= 1:
        return path.stem
    return "-".join(url_safe(part) for part in [*relative.parts[:-1], relative.stem])


def url_safe(text: str) -> str:
    """Letters (of any script), digits and "-._~" kept; every other run becomes "_"."""
    return _NOT_URL_SAFE.sub("_", text).strip("_") or "_"
