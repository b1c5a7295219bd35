"""The approximate vector index past `index.ann_min_chunks`: kinds switch with the store's
size; removal, replacement and filters work with it; scores stay exact; `qa check` agrees."""

from __future__ import annotations

import numpy as np
import pytest

from qa.filters import Filters
from qa.index import local_snapshot
from qa.index.check import check_index
from qa.index.indexer import Indexer
from qa.index.local_engine import LocalEngine
from qa.index.mapped_ivf import MappedIvf
from qa.index.saved_index import build_index_from_documents
from qa.index.vectors import VectorIndex
from qa.ingest.document import Block, Document
from tests.fakes import FakeEmbedder

THRESHOLD = 400
WORDS = "经济 产业 企业 学校 医院 铁路 机场 港口 农业 旅游 科技 文化 体育 电影 音乐 天气".split()


def article(n: int, source: str | None = None) -> Document:
    """One chunk of text made of a few words picked by n (distinct documents, shared words)."""
    words = [WORDS[(n * 7 + i * 3) % len(WORDS)] for i in range(4)]
    text = f"第{n}号报道：{'、'.join(words)}的新闻，编号{n}。"
    return Document(doc_id=f"doc-{n}", path=f"doc-{n}.txt", blocks=(Block(text),),
                    title=f"报道{n}", source=source or f"source-{n % 10}")


def unit_vectors(count: int, dimension: int = 32, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def ann_config(make_config):
    return make_config(index={"ann_min_chunks": THRESHOLD})


def stored_ids(engine) -> set[int]:
    with engine.snapshot() as snapshot:
        return {row[0] for row in snapshot.db.execute("SELECT id FROM chunks")}


def test_build_picks_the_kind_by_size_and_the_index_removes_replaces_and_filters():
    vectors = unit_vectors(3000)
    ids = list(range(10, 3010))

    def batches():
        for start in range(0, 3000, 700):
            yield ids[start:start + 700], vectors[start:start + 700]

    assert VectorIndex.build(32, 3000, batches, ann_min_chunks=5000).kind == "exact"
    index = VectorIndex.build(32, 3000, batches, ann_min_chunks=1000)
    assert index.kind == "approximate" and not index.exact_scores
    assert sorted(index.ids().tolist()) == ids
    assert index.suits(3000, 1000) and index.suits(600, 1000) and not index.suits(400, 1000)
    # A vector finds itself, with its own score up to quantisation.
    best, score = index.search(vectors[5], 1)[0]
    assert best == 15 and score == pytest.approx(1.0, abs=0.02)
    # Removal and replacement.
    assert index.remove([15, 16, 99999]) == 2
    assert 15 not in [i for i, _ in index.search(vectors[5], 10)]
    index.add([15], vectors[[7]])
    assert [i for i, _ in index.search(vectors[7], 2)] in ([17, 15], [15, 17])
    assert len(index) == 2999
    # A filter: only allowed ids, and the best of them even when they are few.
    allowed = ids[::50]
    hits = index.search(vectors[100], 5, allowed=allowed)
    assert {i for i, _ in hits} <= set(allowed) and hits[0][0] == 110
    exact = sorted(allowed, key=lambda i: -float(vectors[i - 10] @ vectors[1234]))[:5]
    assert [i for i, _ in index.search(vectors[1234], 5, allowed=allowed)] == exact


def test_the_approximate_kind_survives_save_and_load(tmp_path):
    vectors = unit_vectors(2000)
    index = VectorIndex.build(32, 2000, lambda: [(list(range(2000)), vectors)], 1000)
    index.save(tmp_path / "v.faiss")
    loaded = VectorIndex.load(tmp_path / "v.faiss")
    assert loaded.kind == "approximate" and len(loaded) == 2000
    assert loaded.suits(2000, 1000) and not loaded.suits(2000 * 100, 1000)
    loaded.remove([3])
    assert len(loaded) == 1999 and 3 not in loaded.ids().tolist()
    np.testing.assert_allclose(loaded.vectors([4])[0], vectors[4], atol=0.02)


def test_the_engine_switches_kinds_when_the_store_crosses_the_threshold(ann_config):
    embedder = FakeEmbedder()
    build_index_from_documents(ann_config, embedder, [article(n) for n in range(300)],
                               ann_config.index_dir)
    engine = LocalEngine(ann_config)
    try:
        assert engine._state.vectors.kind == "exact"
        indexer = Indexer(ann_config, engine, lambda: embedder)
        indexer.put_documents(article(n) for n in range(300, 700))
        engine.refresh()
        assert engine.status()["vector_index"] == "approximate"
        assert set(engine._state.vectors.ids().tolist()) == stored_ids(engine)
        # Far below the threshold again: back to exact.
        indexer.remove(f"doc-{n}" for n in range(150, 700))
        engine.refresh()
        assert engine.status()["vector_index"] == "exact"
        assert set(engine._state.vectors.ids().tolist()) == stored_ids(engine)
    finally:
        engine.close()


@pytest.fixture
def ann_engine(ann_config):
    embedder = FakeEmbedder()
    build_index_from_documents(ann_config, embedder, [article(n) for n in range(1200)],
                               ann_config.index_dir)
    engine = LocalEngine(ann_config)
    assert engine._state.vectors.kind == "approximate"
    yield engine, Indexer(ann_config, engine, lambda: embedder), embedder
    engine.close()


def test_removal_replacement_and_exact_scores_with_the_approximate_index(ann_engine):
    engine, indexer, embedder = ann_engine
    query = embedder.embed_queries([article(77).text])[0]
    with engine.snapshot() as snapshot:
        hits = snapshot.vector_search(query, 10)
        ids = [i for i, _ in hits]
        # Scores are the store's exact inner products, best first.
        np.testing.assert_allclose([s for _, s in hits], snapshot.vectors(ids) @ query,
                                   rtol=1e-5)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        assert snapshot.chunks(ids[:1])[ids[0]].doc_id == "doc-77"
    indexer.remove(["doc-77"])
    with engine.snapshot() as snapshot:
        assert all(snapshot.chunks([i])[i].doc_id != "doc-77"
                   for i, _ in snapshot.vector_search(query, 10))
    # A replacement is found under its new text, not its old one.
    indexer.put_document(Document("doc-78", "doc-78.txt", (Block(article(77).text),),
                                  title="报道78", source="source-8"))
    with engine.snapshot() as snapshot:
        (best, _), *_ = snapshot.vector_search(query, 10)
        assert snapshot.chunks([best])[best].doc_id == "doc-78"
    assert set(engine._state.vectors.ids().tolist()) == stored_ids(engine)
    engine.save_vector_cache()
    assert check_index(engine.config).problems == []


@pytest.mark.parametrize("exact_below", [4096, 10])
def test_filters_with_the_approximate_index(ann_engine, monkeypatch, exact_below):
    """A 10% filter, scored exactly from the store (few chunks) or by the IVF index with an
    id selector (many): the same hits, all allowed."""
    engine, _, embedder = ann_engine
    monkeypatch.setattr(local_snapshot, "EXACT_FILTERED_SEARCH", exact_below)
    query = embedder.embed_queries([article(33).text])[0]
    filters = Filters(sources=("source-3",))
    with engine.snapshot() as snapshot:
        allowed = snapshot.chunk_ids_matching(filters)
        hits = snapshot.vector_search(query, 10, filters)
        truth = snapshot.vectors(allowed) @ query
    assert {i for i, _ in hits} <= set(allowed) and len(hits) == 10
    best = [allowed[i] for i in np.argsort(-truth)[:10]]
    assert [i for i, _ in hits][:3] == best[:3]


def test_a_cache_of_the_wrong_kind_is_replaced_on_open(ann_config, make_config):
    """An exact cache written below the threshold serves a store now past it as IVF (and
    the other way round), rebuilt from the store."""
    embedder = FakeEmbedder()
    build_index_from_documents(ann_config, embedder, [article(n) for n in range(600)],
                               ann_config.index_dir)
    high = ann_config.replace(index=type(ann_config.index)(ann_min_chunks=100_000))
    engine = LocalEngine(high)
    assert engine._state.vectors.kind == "exact"
    engine.save_vector_cache()
    engine.close()
    engine = LocalEngine(ann_config)
    try:
        assert engine._state.vectors.kind == "approximate"
        assert set(engine._state.vectors.ids().tolist()) == stored_ids(engine)
    finally:
        engine.close()
    assert check_index(ann_config).problems == []


def test_the_engine_maps_its_cache_and_maps_the_new_one_it_saves(ann_engine):
    """Opened from a saved cache, the engine searches it mapped; changes go beside it; a
    saved cache folds them in and is mapped in turn; the answers never change."""
    engine, indexer, embedder = ann_engine
    assert isinstance(engine._state.vectors._index, MappedIvf)
    indexer.remove([f"doc-{n}" for n in range(0, 1200, 9)])
    indexer.put_document(Document("doc-5", "doc-5.txt", (Block(article(900).text),),
                                  title="报道5", source="source-5"))
    held = engine._state.vectors
    assert held._index._delta.ntotal > 0 and len(held._index._removed) > 0
    queries = embedder.embed_queries([article(n).text for n in (5, 18, 900, 1111)])

    def answers():
        with engine.snapshot() as snapshot:
            return [snapshot.vector_search(query, 10) for query in queries]

    before = answers()
    path = engine.save_vector_cache()
    now = engine._state.vectors
    assert now is not held and isinstance(now._index, MappedIvf)
    assert now._index._delta.ntotal == 0
    assert path.name == f"vectors-{engine._state.generation}.faiss"
    assert answers() == before
    assert set(now.ids().tolist()) == stored_ids(engine)
    reopened = LocalEngine(engine.config)
    try:
        with reopened.snapshot() as snapshot:
            assert [snapshot.vector_search(query, 10) for query in queries] == before
    finally:
        reopened.close()
