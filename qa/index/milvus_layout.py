"""Which Milvus collection and side store are live, the switch to a rebuilt pair, the
writer lock, and the leftovers of an interrupted rebuild.

    alias newsqa_chunks  ->  collection newsqa_chunks__20261127T150500_a1b2c3
    embeddings/milvus-side.20261127T150500_a1b2c3.sqlite    its side store (same tag)
    embeddings/milvus-side.sqlite.lock                       the writer lock (flock)

A rebuild fills a collection and a side store of a new tag while the old pair serves.
Then one Milvus call points the alias at the new collection (atomic for every client
that opens the index), the old side store records the new collection's name
(`replaced_by`: readers that have the old pair open follow it), and the old pair is
dropped. A collection or side store of another tag than the live one is what an
interrupted rebuild left; the next writer drops it, holding the writer lock (which a
rebuild holds from start to switch, so a running rebuild is never taken for a leftover).

An index made before the alias (a collection named like the alias, its side store at the
configured path) is read as it is; its first rebuild replaces it, with a moment without
an index (Milvus cannot give a collection's name to an alias while the collection lives).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from qa.config import MilvusConfig
from qa.index.layout import hold_lock
from qa.index.milvus_collection import MilvusClient
from qa.index.milvus_side import mark_replaced

logger = logging.getLogger(__name__)

_TAG = r"\d{8}T\d{6}_[0-9a-f]{6}"
_SIDE_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Target:
    """A collection and the side store that goes with it."""
    collection: str
    side_path: Path
    legacy: bool = False


def target_for(settings: MilvusConfig, collection: str) -> Target:
    if collection == settings.collection:
        return Target(collection, settings.side_store, legacy=True)
    tag = collection.removeprefix(f"{settings.collection}__")
    side = settings.side_store
    return Target(collection, side.with_name(f"{side.stem}.{tag}{side.suffix}"))


def new_target(settings: MilvusConfig) -> Target:
    """A pair of a new tag (nothing is created)."""
    tag = f"{time.strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(3)}"
    return target_for(settings, f"{settings.collection}__{tag}")


def live_target(client: MilvusClient, settings: MilvusConfig) -> Target | None:
    """The pair the alias names (or the pre-alias collection), None if there is none."""
    alias = settings.collection
    if alias in client.list_aliases().get("aliases", []):
        return target_for(settings, client.describe_alias(alias)["collection_name"])
    if client.has_collection(alias):
        return target_for(settings, alias)
    return None


def make_live(client: MilvusClient, settings: MilvusConfig, new: Target,
              old: Target | None) -> None:
    """Point the alias at `new`, tell readers of `old` to follow, drop `old`."""
    alias = settings.collection
    if old is not None and old.legacy:
        mark_replaced(old.side_path, new.collection)
        client.drop_collection(old.collection)  # frees its name for the alias
        client.create_alias(new.collection, alias)
    elif alias in client.list_aliases().get("aliases", []):
        client.alter_alias(new.collection, alias)
    else:
        client.create_alias(new.collection, alias)
    logger.info("Milvus index %s now serves %s", alias, new.collection)
    if old is not None and old.collection != new.collection:
        if not old.legacy:
            mark_replaced(old.side_path, new.collection)
        drop(client, old, collection=not old.legacy)


def drop(client: MilvusClient, target: Target, collection: bool = True) -> None:
    """Drop a pair's collection and delete its side store files."""
    if collection and target.collection in client.list_collections():
        client.drop_collection(target.collection)
    for suffix in _SIDE_SUFFIXES:
        target.side_path.with_name(target.side_path.name + suffix).unlink(missing_ok=True)


def leftovers(client: MilvusClient, settings: MilvusConfig) -> tuple[list[str], list[Path]]:
    """Collections and side store files of no live pair (an interrupted rebuild's)."""
    live = live_target(client, settings)
    names = re.compile(rf"^{re.escape(settings.collection)}__{_TAG}$")
    collections = [c for c in client.list_collections()
                   if names.match(c) and (live is None or c != live.collection)]
    side = settings.side_store
    files = re.compile(rf"^{re.escape(side.stem)}\.{_TAG}{re.escape(side.suffix)}"
                       r"(-wal|-shm|-journal)?$")
    keep = live.side_path.name if live is not None else None
    paths = []
    if side.parent.is_dir():
        for path in side.parent.iterdir():
            own = path.name.removesuffix("-wal").removesuffix("-shm").removesuffix("-journal")
            if own == keep:
                continue
            if files.match(path.name) or own == side.name:  # also a pre-alias side store
                paths.append(path)
    return collections, sorted(paths)


def remove_leftovers(client: MilvusClient, settings: MilvusConfig) -> None:
    """Drop what `leftovers` finds; call with the writer lock held."""
    collections, paths = leftovers(client, settings)
    for name in collections:
        client.drop_collection(name)
        logger.info("dropped leftover Milvus collection %s", name)
    for path in paths:
        path.unlink(missing_ok=True)
        logger.info("removed leftover %s", path)


def drop_index(client: MilvusClient, settings: MilvusConfig) -> None:
    """Drop the alias, the live pair and any leftovers (a scratch index of `qa eval`)."""
    live = live_target(client, settings)
    remove_leftovers(client, settings)
    if live is not None:
        if not live.legacy:
            client.drop_alias(settings.collection)
        drop(client, live)


def writer_lock(settings: MilvusConfig,
                wait_seconds: float = 30.0) -> AbstractContextManager[None]:
    """The lock writers of this index hold (a file beside the side store)."""
    side = settings.side_store
    side.parent.mkdir(parents=True, exist_ok=True)
    return hold_lock(side.with_name(side.name + ".lock"),
                     f"the Milvus index {settings.collection}", wait_seconds)
