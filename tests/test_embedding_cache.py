"""The vector cache is a cache: damage to it is set aside, never fatal."""

from __future__ import annotations

import sqlite3

import numpy as np

from qa.embedding_cache import CachedEmbedder
from tests.fakes import FakeEmbedder


def test_vectors_come_back_from_the_cache(tmp_path):
    cache = CachedEmbedder(FakeEmbedder(), tmp_path / "cache.sqlite")
    first = cache.embed_passages(["宜宾白酒"])
    again = CachedEmbedder(FakeEmbedder(), tmp_path / "cache.sqlite")
    assert np.allclose(again.embed_passages(["宜宾白酒"]), first) and again.reused == 1
    cache.close()
    again.close()


def test_a_garbage_cache_is_moved_aside_and_started_afresh(tmp_path):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"\x13garbage" * 1000)
    cache = CachedEmbedder(FakeEmbedder(), path)
    assert cache.embed_passages(["景德镇"]).shape == (1, cache.dimension)
    assert len(list(tmp_path.glob("cache.sqlite.corrupt-*"))) == 1
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == 1
    cache.close()


def test_a_cache_damaged_while_in_use_is_set_aside(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = CachedEmbedder(FakeEmbedder(), path)
    cache.embed_passages(["a"])

    class Broken:
        def execute(self, *args):
            raise sqlite3.DatabaseError("database disk image is malformed")

        def close(self):
            pass

    cache._db = Broken()
    assert cache.embed_passages(["b"]).shape == (1, cache.dimension)
    assert list(tmp_path.glob("cache.sqlite.corrupt-*"))
    cache.close()


def test_an_unusable_folder_means_no_cache_file_not_a_failure(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = CachedEmbedder(FakeEmbedder(), blocker / "cache.sqlite")
    assert cache.embed_passages(["c"]).shape == (1, cache.dimension)
    cache.close()
