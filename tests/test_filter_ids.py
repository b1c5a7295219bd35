"""Chunk ids per filter, shared by the snapshots of one store generation
(qa.index.filter_ids): listed once, never stale after a commit, bounded."""

from __future__ import annotations

import pytest

from qa.filters import Filters
from qa.index.filter_ids import FilterIds
from qa.index.store import StoreReader
from tests.test_tantivy_keywords import put

ONE = Filters(sources=("新华社",))
OTHER = Filters(sources=("经济参考报",))


def test_a_listing_is_reused_within_a_generation_and_dropped_after():
    cache = FilterIds()
    calls = []

    def listing(ids):
        return lambda: calls.append(ids) or ids

    assert cache.get(ONE, 1, listing([1, 2])) == [1, 2]
    assert cache.get(ONE, 1, listing([9])) == [1, 2]
    assert cache.get(ONE, 2, listing([1, 2, 3])) == [1, 2, 3]
    # An older snapshot still open lists for itself and keeps nothing.
    assert cache.get(OTHER, 1, listing([7])) == [7]
    assert cache.get(ONE, 2, listing([0])) == [1, 2, 3]
    assert calls == [[1, 2], [1, 2, 3], [7]]
    assert len(cache) == 1


def test_the_held_ids_are_bounded():
    cache = FilterIds(max_ids=5)
    cache.get(ONE, 1, lambda: [1, 2, 3])
    cache.get(OTHER, 1, lambda: [4, 5, 6])  # 6 ids: the least recently used goes
    assert len(cache) == 1
    assert cache.get(ONE, 1, lambda: [0]) == [0]
    cache.get(Filters(doc_ids=("x",)), 1, lambda: list(range(6)))  # over the bound alone
    assert cache.get(Filters(doc_ids=("x",)), 1, lambda: []) == []


@pytest.fixture
def engine(empty_local_engine):
    return empty_local_engine


def test_the_snapshots_share_a_listing_and_see_each_commit(engine, monkeypatch):
    first = engine.commit([put("a", "景德镇陶瓷产业。", source="新华社"),
                           put("b", "宜宾白酒产业。")]).chunk_ids
    listed = []
    original = StoreReader.chunk_ids_matching

    def counting(self, filters):
        if filters not in self._matching:  # a query of the store, not this snapshot's copy
            listed.append(filters)
        return original(self, filters)

    monkeypatch.setattr(StoreReader, "chunk_ids_matching", counting)
    for _ in range(3):
        with engine.snapshot() as snapshot:
            assert snapshot.chunk_ids_matching(ONE) == first["a"]
    assert len(listed) == 1
    second = engine.commit([put("c", "赣州脐橙。", source="新华社")]).chunk_ids
    with engine.snapshot() as snapshot:
        assert sorted(snapshot.chunk_ids_matching(ONE)) == sorted(first["a"] + second["c"])
    engine.commit([put("remove-me", "临时。")])
    engine.commit([put("a", "景德镇陶瓷产业。", source="经济参考报")])
    with engine.snapshot() as snapshot:
        assert snapshot.chunk_ids_matching(ONE) == second["c"]
