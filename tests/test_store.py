"""The chunk store and the FAISS index: round trips, stable ids, single-document updates."""

from __future__ import annotations

import numpy as np

from qa.config import ChunkingConfig
from qa.index.store import ChunkStore, content_hash
from qa.index.vectors import VectorIndex
from qa.ingest.chunker import chunk_document
from qa.ingest.document import Block, Document
from tests.fakes import FakeEmbedder


def make_document(doc_id: str, *paragraphs: str, title: str = "标题") -> Document:
    return Document(
        doc_id=doc_id, path=f"{doc_id}.txt", blocks=tuple(Block(p) for p in paragraphs),
        title=title, date="2022-05-19", source="经济参考报", url="http://example.com/a",
        category="news", tags=("经济参考报新闻",),
    )


def test_documents_and_chunks_round_trip_through_sqlite(tmp_path):
    document = make_document("a", "宜宾白酒产业营业收入1600亿元。", "京东携手宜宾。")
    chunks = chunk_document(document, ChunkingConfig(max_chars=50, min_chars=0))
    store = ChunkStore(tmp_path / "chunks.sqlite")
    ids = store.add_document(document, chunks)
    store.close()

    reopened = ChunkStore(tmp_path / "chunks.sqlite")
    assert reopened.document("a") == document
    stored = reopened.chunks(ids)
    assert [stored[i].text for i in ids] == [c.text for c in chunks]
    first = stored[ids[0]]
    assert (first.title, first.source, first.date, first.url) == (
        "标题", "经济参考报", "2022-05-19", "http://example.com/a")
    assert document.text[first.char_start:first.char_end] == first.text
    assert reopened.counts() == (1, len(chunks))
    assert reopened.document_hash("a") == content_hash(document)


def test_replacing_a_document_gives_new_ids_and_never_reuses_old_ones(tmp_path):
    store = ChunkStore(tmp_path / "chunks.sqlite")
    settings = ChunkingConfig(max_chars=50, min_chars=0)
    old = make_document("a", "第一段。", "第二段。")
    old_ids = store.add_document(old, chunk_document(old, settings))
    other = make_document("b", "别的文章。")
    other_ids = store.add_document(other, chunk_document(other, settings))
    new = make_document("a", "改过的第一段。")
    new_ids = store.add_document(new, chunk_document(new, settings))

    assert not set(new_ids) & set(old_ids)
    assert min(new_ids) > max(other_ids)
    assert store.chunks(old_ids) == {}
    assert store.document_hash("a") == content_hash(new) != content_hash(old)
    assert store.remove_document("b") == other_ids
    assert store.counts() == (1, len(new_ids))
    assert [d.doc_id for d in store.documents()] == ["a"]


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
    assert loaded.remove([20]) == 1
    assert [i for i, _ in loaded.search(query, 5)] != [] and 20 not in dict(loaded.search(query, 5))
    np.testing.assert_allclose(loaded.vectors([10])[0], embedder.embed_passages(["宜宾白酒"])[0])
