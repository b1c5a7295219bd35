"""Tombstones (`removed_chunks`) are pruned once no reader needs them; a reader further
behind than that still catches up (qa.index.store.removed_since)."""

from __future__ import annotations

import pytest

from qa.index import store
from qa.index.engine import RemoveDocument
from qa.index.layout import IndexFolder
from qa.index.local_engine import LocalEngine, create_index
from qa.index.store import STORE_FILE, StoreReader, connect, transaction
from tests.fakes import FakeEmbedder
from tests.test_store import make_document, put

KEEP = 5


@pytest.fixture
def config(make_config, monkeypatch):
    monkeypatch.setattr(store, "TOMBSTONE_GENERATIONS", KEEP)
    config = make_config(index={"keyword_backend": "fts5"},
                         chunking={"max_chars": 50, "min_chars": 0})
    with IndexFolder(config.index_dir).writer_lock():
        create_index(config, config.index_dir, FakeEmbedder().dimension)
    return config


def cycle(engine: LocalEngine, number: int) -> None:
    """Add a document, replace it, remove it: three generations, two sets of tombstones."""
    engine.commit([put(make_document("a", f"第{number}次：景德镇陶瓷产业。", "宜宾白酒。"))])
    engine.commit([put(make_document("a", f"第{number}次修订：赣州脐橙丰收。"))])
    engine.commit([RemoveDocument("a")])


def tombstones(engine: LocalEngine) -> int:
    with engine.snapshot() as snapshot:
        return snapshot.db.execute("SELECT COUNT(*) FROM removed_chunks").fetchone()[0]


def store_bytes(engine: LocalEngine) -> int:
    return sum(p.stat().st_size for p in engine.store_dir.glob(STORE_FILE + "*"))


def test_a_long_add_and_remove_cycle_keeps_the_store_bounded(config):
    engine = LocalEngine(config)
    try:
        engine.commit([put(make_document("kept", "宜宾白酒产业营业收入增长。"))])
        sizes, counts = [], []
        for number in range(40):
            cycle(engine, number)
            if number in (19, 39):
                sizes.append(store_bytes(engine))
                counts.append(tombstones(engine))
        # At most the tombstones of the last KEEP generations (a document of two chunks
        # or one per generation) are left, however many cycles ran.
        assert counts[0] == counts[1] <= 2 * KEEP
        # SQLite reuses the freed pages: the second 20 cycles did not grow the file
        # (beyond the WAL, which is checkpointed in place).
        assert sizes[1] <= sizes[0] * 1.1
    finally:
        engine.close()


def test_a_reader_behind_the_pruned_tombstones_still_drops_every_removed_chunk(config):
    engine = LocalEngine(config)
    reader = LocalEngine(config)  # another process that stopped refreshing for a while
    try:
        first = engine.commit([put(make_document("a", "景德镇陶瓷产业。", "宜宾白酒。")),
                               put(make_document("b", "赣州脐橙丰收。"))]).chunk_ids
        reader.refresh()
        assert set(reader._state.vectors.ids().tolist()) == set(first["a"] + first["b"])
        for number in range(3 * KEEP):
            cycle(engine, number)
        engine.commit([RemoveDocument("b")])
        with engine.snapshot() as snapshot:
            pruned = snapshot.tombstones_pruned_through()
            kept = snapshot.db.execute("SELECT MIN(generation) FROM removed_chunks").fetchone()
            assert reader._state.generation < pruned < kept[0]
            live = {row[0] for row in snapshot.db.execute("SELECT id FROM chunks")}
        # The tombstones of "b" and of the first "a" are gone; the reader learns of their
        # removal from the ids the store no longer holds.
        reader.refresh()
        assert set(reader._state.vectors.ids().tolist()) == live
    finally:
        reader.close()
        engine.close()


def test_removed_since_past_the_pruned_tombstones_gives_every_removed_id(config):
    engine = LocalEngine(config)
    try:
        ids = engine.commit([put(make_document("a", "景德镇陶瓷产业。")),
                             put(make_document("b", "宜宾白酒。"))]).chunk_ids
        engine.commit([RemoveDocument("a")])
        for number in range(2 * KEEP):
            cycle(engine, number)
        db = connect(engine.store_dir / STORE_FILE, readonly=True)
        try:
            with transaction(db, immediate=False):
                reader = StoreReader(db)
                live = {row[0] for row in db.execute("SELECT id FROM chunks")}
                top = db.execute("SELECT seq FROM sqlite_sequence").fetchone()[0]
                everything = reader.removed_since(0)
                recent = reader.removed_since(reader.generation() - 1)
        finally:
            db.close()
        assert set(ids["a"]) <= set(everything)
        assert set(everything) == set(range(1, top + 1)) - live
        assert live == set(ids["b"])
        assert recent and set(recent) < set(everything)  # recent ones still by tombstone
    finally:
        engine.close()
