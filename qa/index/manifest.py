"""The manifest of a store: the settings its index was built with, checked on every open."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qa import __version__
from qa.config import Config
from qa.errors import IndexDamagedError, IndexMismatchError
from qa.index.layout import write_atomically

FORMAT_VERSION = 2
MANIFEST_FILE = "manifest.json"


def expected_manifest(config: Config, dimension: int) -> dict[str, Any]:
    """The manifest fields that must match between an index and the config using it."""
    return {
        "format": FORMAT_VERSION,
        "model": config.model.name,
        "dimension": dimension,
        "query_prompt": config.model.query_prompt,
        "passage_prompt": config.model.passage_prompt,
        "chunking": asdict(config.chunking),
        "keywords": {"user_words": list(config.keywords.user_words)},
    }


def new_manifest(config: Config, dimension: int) -> dict[str, Any]:
    """The settings plus when and by which version the store was created."""
    import time

    return expected_manifest(config, dimension) | {
        "qa_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_manifest(store_dir: Path, manifest: dict[str, Any]) -> None:
    write_atomically(store_dir / MANIFEST_FILE,
                     json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8"))


def read_manifest(store_dir: Path) -> dict[str, Any]:
    """The manifest of a store folder; says what to run if it is missing or unreadable."""
    path = store_dir / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexDamagedError(
            f"the index manifest {path} is missing; run `qa check --repair`") from None
    except (OSError, ValueError) as exc:
        raise IndexDamagedError(
            f"the index manifest {path} is unreadable ({exc}); run `qa check --repair`"
        ) from None
    if not isinstance(manifest, dict):
        raise IndexDamagedError(
            f"the index manifest {path} is not a JSON object; run `qa check --repair`")
    return manifest


def check_manifest(manifest: dict[str, Any], config: Config, dimension: int | None) -> None:
    """Refuse an index built with other settings, naming the difference."""
    wanted = expected_manifest(config, dimension if dimension else manifest.get("dimension", 0))
    built = _with_keyword_title(manifest)
    for key, value in wanted.items():
        if built.get(key) != value:
            raise IndexMismatchError(
                f"the index was built with {key} = {built.get(key)!r}, but the config "
                f"has {value!r}; run `qa index --rebuild` to rebuild it"
            )


def _with_keyword_title(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with `chunking.keyword_title` filled in for an index built before the
    setting existed: its keyword text held the title exactly when `embed_title` was on."""
    chunking = manifest.get("chunking")
    if not isinstance(chunking, dict) or "keyword_title" in chunking \
            or "embed_title" not in chunking:
        return manifest
    return manifest | {"chunking": chunking | {"keyword_title": chunking["embed_title"]}}
