"""The store and the local engine: round trips, stable ids, generations, snapshots,
another process's changes, and the FAISS cache."""

from __future__ import annotations

import numpy as np
import pytest

from qa.config import ChunkingConfig
from qa.index.engine import PutDocument, RemoveDocument
from qa.index.local_engine import LocalEngine
from qa.index.store import content_hash
from qa.index.vectors import VectorIndex
from qa.ingest.chunker import chunk_document
from qa.ingest.document import Block, Document
from tests.fakes import FakeEmbedder

SETTINGS = ChunkingConfig(max_chars=50, min_chars=0)


def make_document(doc_id: str, *paragraphs: str, title: str = "标题") -> Document:
    return Document(
        doc_id=doc_id, path=f"{doc_id}.txt", blocks=tuple(Block(p) for p in paragraphs),
        title=title, date="2022-05-19", source="经济参考报", url="http://example.com/a",
        category="news", tags=("经济参考报新闻",),
    )


def put(document: Document, embedder=None) -> PutDocument:
    embedder = embedder or FakeEmbedder()
    chunks = chunk_document(document, SETTINGS)
    vectors = embedder.embed_passages([c.text for c in chunks])
    return PutDocument(document, chunks, vectors, [[c.text] for c in chunks], "api")


@pytest.fixture
def engine(empty_local_engine):
    return empty_local_engine


def test_documents_and_chunks_round_trip(engine):
    document = make_document("a", "宜宾白酒产业营业收入1600亿元。", "京东携手宜宾。")
    ids = engine.commit([put(document)]).chunk_ids["a"]
    with engine.snapshot() as snapshot:
        assert snapshot.document("a") == document
        stored = snapshot.chunks(ids)
        assert snapshot.counts() == (1, len(ids))
        assert snapshot.document_hash("a") == content_hash(document)
    first = stored[ids[0]]
    assert (first.title, first.source, first.date, first.url) == (
        "标题", "经济参考报", "2022-05-19", "http://example.com/a")
    assert document.text[first.char_start:first.char_end] == first.text


def test_a_snapshot_does_not_see_a_commit_made_during_it(engine):
    engine.commit([put(make_document("a", "景德镇陶瓷。"))])
    with engine.snapshot() as snapshot:
        before = snapshot.counts()
        # Another engine stands for another process writing meanwhile.
        other = LocalEngine(engine.config)
        other.commit([put(make_document("b", "宜宾白酒。"))])
        other.close()
        assert snapshot.counts() == before
        with pytest.raises(Exception, match="no document"):
            snapshot.document("b")
    with engine.snapshot() as snapshot:
        assert snapshot.counts() == (2, 2)


def test_vectors_follow_another_process_changes_and_the_cache(engine):
    embedder = FakeEmbedder()
    other = LocalEngine(engine.config)
    other.commit([put(make_document("a", "景德镇陶瓷产业。"), embedder),
                  put(make_document("b", "宜宾白酒产业。"), embedder)])
    query = embedder.embed_queries(["宜宾的白酒"])[0]
    with engine.snapshot() as snapshot:
        best = snapshot.vector_search(query, 1)[0][0]
        assert snapshot.chunks([best])[best].doc_id == "b"
    other.commit([RemoveDocument("b")])
    with engine.snapshot() as snapshot:
        assert all(snapshot.chunks([i])[i].doc_id == "a"
                   for i, _ in snapshot.vector_search(query, 5))
    cache = other.save_vector_cache()
    other.close()
    assert cache.name == f"vectors-{engine.status()['generation']}.faiss"
    reopened = LocalEngine(engine.config)
    assert len(reopened._state.vectors) == 1
    reopened.close()


def test_a_damaged_vector_cache_is_rebuilt_from_the_store(engine):
    engine.commit([put(make_document("a", "景德镇陶瓷产业。", "宜宾白酒。"))])
    cache = engine.save_vector_cache()
    cache.write_bytes(b"garbage")
    reopened = LocalEngine(engine.config)
    assert len(reopened._state.vectors) == engine.status()["chunks"]
    reopened.close()


def test_vector_index_add_search_remove_and_save(tmp_path):
    embedder = FakeEmbedder(dimension=32)
    texts = ["宜宾白酒", "景德镇陶瓷", "梧州数字经济"]
    index = VectorIndex.empty(32)
    index.add([10, 20, 30], embedder.embed_passages(texts))
    query = embedder.embed_queries(["景德镇的陶瓷"])[0]
    assert index.search(query, 2)[0][0] == 20

    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss")
    assert len(loaded) == 3 and loaded.dimension == 32
    assert sorted(loaded.ids().tolist()) == [10, 20, 30]
    assert loaded.remove([20]) == 1
    assert 20 not in dict(loaded.search(query, 5))
    np.testing.assert_allclose(loaded.vectors([10])[0], embedder.embed_passages(["宜宾白酒"])[0])
    with pytest.raises(ValueError, match="not a readable FAISS index"):
        (tmp_path / "bad.faiss").write_bytes(b"\0" * 10)
        VectorIndex.load(tmp_path / "bad.faiss")


def test_a_watching_engine_saves_the_vector_cache_when_far_behind(engine, monkeypatch):
    from qa.index import vector_cache

    monkeypatch.setattr(vector_cache, "UNSAVED_CHANGES", 3)
    engine.commit([put(make_document("a", "景德镇陶瓷。", "宜宾白酒。", "梧州经济。"))])
    other = LocalEngine(engine.config)
    other.commit([put(make_document("b", "一。", "二。", "三。"))])
    other.close()
    engine.refresh()
    engine._save_cache_if_far_behind()
    caches = sorted(p.name for p in engine.store_dir.glob("vectors-*.faiss"))
    assert caches == [f"vectors-{engine.status()['generation']}.faiss"]
