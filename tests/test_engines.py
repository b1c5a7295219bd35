"""Every engine behind the one Engine interface: the local engine (FAISS + SQLite) and
Milvus (Milvus Lite here; a server too when MILVUS_URI is set). Round trips, replace and
remove, generations, snapshots, filters, migration between engines, and the same answers
through the Retriever."""

from __future__ import annotations

import inspect
import os
import secrets

import numpy as np
import pytest

from qa.index import milvus_bm25
from qa.index.engine import Filters, RemoveDocument
from qa.index.engines import migrate, open_engine, writable_engine
from qa.index.indexer import Indexer
from qa.index.saved_index import build_index, open_index, sync_index
from qa.retriever import Retriever
from tests.conftest import ARTICLES
from tests.fakes import FakeEmbedder
from tests.test_store import make_document, put

MILVUS_URI = os.environ.get("MILVUS_URI", "")
KINDS = [
    "local",
    "local-tantivy",
    "milvus-lite",
    pytest.param("milvus-server", marks=pytest.mark.skipif(
        not MILVUS_URI, reason="MILVUS_URI is not set: tests against a Milvus server skipped")),
]


def engine_config(make_config, kind: str, **settings):
    if kind == "local":
        return make_config(index={"keyword_backend": "fts5"}, **settings)
    if kind == "local-tantivy":
        return make_config(index={"keyword_backend": "tantivy"}, **settings)
    milvus = {"collection": f"test_{secrets.token_hex(4)}"}
    if kind == "milvus-server":
        milvus["uri"] = MILVUS_URI
    return make_config(engine="milvus", milvus=milvus, **settings)


def drop_if_server(config) -> None:
    from qa.index.engines import discard_scratch

    if config.engine == "milvus" and "://" in config.milvus.uri:
        discard_scratch(config)


@pytest.fixture(params=KINDS)
def config(request, make_config):
    config = engine_config(make_config, request.param,
                           chunking={"max_chars": 50, "min_chars": 0})
    yield config
    drop_if_server(config)


@pytest.fixture
def engine(config):
    with writable_engine(config, FakeEmbedder) as engine:
        yield engine


def supports_filters(engine) -> bool:
    with engine.snapshot() as snapshot:
        return "filters" in inspect.signature(snapshot.vector_search).parameters


def test_documents_and_chunks_round_trip(engine):
    document = make_document("a", "宜宾白酒产业营业收入1600亿元。", "京东携手宜宾。")
    change = put(document)
    ids = engine.commit([change]).chunk_ids["a"]
    with engine.snapshot() as snapshot:
        assert snapshot.document("a") == document
        assert snapshot.document_info("a")[1] == "api"
        assert snapshot.counts() == (1, len(ids)) and snapshot.chunk_count("a") == len(ids)
        stored = snapshot.chunks(ids)
        np.testing.assert_allclose(snapshot.vectors(ids), change.vectors, rtol=1e-6)
        assert snapshot.vectors([10**9]).tolist() == [[0.0] * engine.dimension]
        assert [d.doc_id for d in snapshot.documents()] == ["a"]
        assert snapshot.origins() == {"api": ["a"]}
    first = stored[ids[0]]
    assert (first.title, first.source, first.date, first.url) == (
        "标题", "经济参考报", "2022-05-19", "http://example.com/a")
    assert document.text[first.char_start:first.char_end] == first.text


def test_both_searches_and_idf(engine):
    embedder = FakeEmbedder()
    ids = engine.commit([put(make_document("a", "景德镇陶瓷产业"), embedder),
                         put(make_document("b", "宜宾白酒产业"), embedder)]).chunk_ids
    (a,), (b,) = ids["a"], ids["b"]
    with engine.snapshot() as snapshot:
        query = embedder.embed_queries(["宜宾的白酒"])[0]
        hits = snapshot.vector_search(query, 5)
        assert hits[0][0] == b and hits[0][1] == pytest.approx(float(
            snapshot.vectors([b])[0] @ query), abs=1e-5)
        # put() indexes each chunk's whole text as one token (no punctuation here: the
        # local engine's FTS5 would drop it from the index but not from an idf lookup).
        assert [i for i, _ in snapshot.keyword_search(["宜宾白酒产业"], 5)] == [b]
        assert snapshot.keyword_search(["宜宾白酒产业"], 5)[0][1] > 0
        assert snapshot.keyword_search(["宜宾白酒产业"], 5, among=[a]) == []
        assert snapshot.keyword_search(["宜宾白酒产业"], 5, among=[]) == []
        assert snapshot.keyword_search([" "], 5) == []
        idf = snapshot.idf(["宜宾白酒产业", "没有"])
        assert idf["没有"] > idf["宜宾白酒产业"] > 0


def test_replacing_gives_new_ids_never_reused_and_moves_the_generation(engine):
    old_ids = engine.commit([put(make_document("a", "第一段。", "第二段。"))]).chunk_ids["a"]
    other = engine.commit([put(make_document("b", "别的文章。"))])
    new = engine.commit([put(make_document("a", "改过的第一段。"))])
    new_ids = new.chunk_ids["a"]
    assert not set(new_ids) & set(old_ids)
    assert min(new_ids) > max(other.chunk_ids["b"])
    assert new.generation == other.generation + 1
    with engine.snapshot() as snapshot:
        assert snapshot.chunks(old_ids) == {}
        assert snapshot.counts() == (2, 1 + len(new_ids))
        assert snapshot.idf(["第一段"])["第一段"] == snapshot.idf(["从未出现"])["从未出现"]
        assert not snapshot.keyword_search(["第一段。"], 5)
    removed = engine.commit([RemoveDocument("b"), RemoveDocument("missing")])
    assert removed.removed == {"b": True, "missing": False}
    assert engine.status()["generation"] == new.generation + 1
    with engine.snapshot() as snapshot:
        assert [d.doc_id for d in snapshot.documents()] == ["a"]
        hits = snapshot.vector_search(FakeEmbedder().embed_queries(["别的文章"])[0], 5)
        assert {i for i, _ in hits} == set(new_ids)


def test_a_document_put_twice_in_one_batch_keeps_the_last(engine):
    result = engine.commit([put(make_document("a", "第一版。")),
                            put(make_document("a", "第二版。"))])
    with engine.snapshot() as snapshot:
        assert snapshot.counts() == (1, 1)
        assert [i for i, _ in snapshot.vector_search(
            FakeEmbedder().embed_queries(["第一版"])[0], 5)] == result.chunk_ids["a"]


def test_a_snapshot_does_not_see_a_commit_made_during_it(engine, config):
    engine.commit([put(make_document("a", "景德镇陶瓷。"))])
    with engine.snapshot() as snapshot:
        before = snapshot.counts()
        # Another engine stands for another writer meanwhile.
        other = open_engine(config)
        added = other.commit([put(make_document("b", "宜宾白酒。"))]).chunk_ids["b"]
        other.close()
        assert snapshot.counts() == before
        with pytest.raises(Exception, match="no document"):
            snapshot.document("b")
        # Milvus already holds b's chunk; the snapshot must not return it.
        query = FakeEmbedder().embed_queries(["宜宾白酒。"])[0]
        assert added[0] not in dict(snapshot.vector_search(query, 5))
    with engine.snapshot() as snapshot:
        assert snapshot.counts() == (2, 2)
        assert added[0] in dict(snapshot.vector_search(query, 5))


def test_filters_inside_both_searches(engine):
    if not supports_filters(engine):
        pytest.skip("this engine does not take filters yet (the local engine's are landing)")
    embedder = FakeEmbedder()
    documents = [
        make_document("old", "宜宾白酒产业。") ,
        make_document("new", "宜宾白酒产业。"),
        make_document("undated", "宜宾白酒产业。"),
    ]
    documents[1] = documents[1].__class__(**{**documents[1].__dict__, "date": "2024-03-01",
                                             "source": "四川日报", "category": "economy"})
    documents[2] = documents[2].__class__(**{**documents[2].__dict__, "date": None})
    ids = engine.commit([put(d, embedder) for d in documents]).chunk_ids
    query = embedder.embed_queries(["宜宾白酒"])[0]
    cases = {
        Filters(sources=("四川日报",)): {"new"},
        Filters(doc_ids=("old", "undated")): {"old", "undated"},
        Filters(categories=("economy",)): {"new"},
        Filters(date_from="2023-01-01"): {"new"},
        Filters(date_to="2023-01-01"): {"old"},
        Filters(date_from="2022-05-19", date_to="2022-05-19"): {"old"},
        Filters(): {"old", "new", "undated"},
    }
    owner = {i: doc for doc, chunk_ids in ids.items() for i in chunk_ids}
    with engine.snapshot() as snapshot:
        for filters, expected in cases.items():
            assert {owner[i] for i, _ in snapshot.vector_search(query, 10, filters)} == expected
            assert {owner[i] for i, _ in snapshot.keyword_search(
                ["宜宾白酒产业。"], 10, filters=filters)} == expected
            assert snapshot.matching_documents(filters) == len(expected)
        among = [ids["old"][0], ids["new"][0]]
        assert {owner[i] for i, _ in snapshot.keyword_search(
            ["宜宾白酒产业。"], 10, among=among, filters=Filters(sources=("四川日报",)))} == {"new"}
        assert dict(snapshot.sources()) == {"经济参考报": 2, "四川日报": 1}
        assert snapshot.date_range() == ("2022-05-19", "2024-03-01")


@pytest.mark.parametrize("direction", [("local", "milvus"), ("milvus", "local")])
def test_migrate_copies_an_index_without_re_embedding(make_config, tmp_path, direction):
    source, target = direction
    config = make_config(engine=source, milvus={"collection": "migrated"},
                         chunking={"max_chars": 60, "min_chars": 10})
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    embedder = FakeEmbedder()
    build_index(config, embedder, corpus, config.index_dir)
    with writable_engine(config, None) as engine:
        Indexer(config, engine, lambda: embedder).put_document(
            make_document("api-doc", "通过接口写入的文章。"))
    embedded = embedder.passages_embedded
    report = migrate(config, target)
    assert embedder.passages_embedded == embedded
    moved = config.replace(engine=target)
    first, second = open_index(config), open_index(moved)
    try:
        with first.snapshot() as a, second.snapshot() as b:
            assert a.counts() == b.counts() == (report.documents, report.chunks)
            assert a.documents() == b.documents()
            assert a.origins() == b.origins() and a.files() == b.files()
        retrievers = [Retriever(c, e, embedder) for c, e in ((config, first), (moved, second))]
        # Vector search is exact on both engines: the same list, the same scores.
        by_vector = [r.ask("宜宾白酒产业的营业收入", top_k=5, mode="vector") for r in retrievers]
        assert [p.text for p in by_vector[0].passages] == [p.text for p in by_vector[1].passages]
        assert [p.vector_score for p in by_vector[0].passages] == pytest.approx(
            [p.vector_score for p in by_vector[1].passages], abs=1e-5)
        # Keywords are scored as FTS5's bm25() on both (the Milvus engine from its side
        # store's statistics): the same list, the same scores, in both modes.
        for mode in ("keyword", "hybrid"):
            answers = [r.ask("宜宾白酒产业的营业收入", top_k=5, mode=mode) for r in retrievers]
            assert [p.text for p in answers[0].passages] == [p.text for p in answers[1].passages]
            assert [p.keyword_score for p in answers[0].passages] == pytest.approx(
                [p.keyword_score for p in answers[1].passages], rel=1e-6)
    finally:
        first.close()
        second.close()


class Recording(FakeEmbedder):
    """Remembers every passage it embeds."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []

    def embed_passages(self, texts, progress=None):
        self.texts.extend(texts)
        return super().embed_passages(texts, progress)


class Exploding(FakeEmbedder):
    def embed_passages(self, texts, progress=None):
        raise RuntimeError("interrupted")


def ids_of(snapshot, query: str, embedder) -> set[str]:
    """The documents of the chunks a vector search finds."""
    hits = snapshot.vector_search(embedder.embed_queries([query])[0], 20)
    return {chunk.doc_id for chunk in snapshot.chunks([i for i, _ in hits]).values()}


def test_a_rebuild_goes_live_whole_and_carries_api_documents_over_unembedded(config):
    corpus = config.corpus_dir
    corpus.mkdir(parents=True)
    (corpus / "a.txt").write_text("景德镇陶瓷产业数字化转型。", encoding="utf-8")
    embedder = Recording()
    sync_index(config, lambda: embedder)
    with writable_engine(config, None) as engine:
        Indexer(config, engine, lambda: embedder).put_document(
            make_document("api-doc", "通过接口写入的宜宾白酒文章。"))
    reader = open_engine(config)  # open across the rebuild: it must follow
    try:
        (corpus / "b.txt").write_text("梧州数字经济发展。", encoding="utf-8")
        embedder.texts.clear()
        report = sync_index(config, lambda: embedder, rebuild=True)
        assert "api-doc" in report.added
        assert not any("宜宾白酒" in text for text in embedder.texts)  # its vectors copied
        with reader.snapshot() as snapshot:
            assert snapshot.counts()[0] == 3
            assert snapshot.origins()["api"] == ["api-doc"]
            assert "api-doc" in ids_of(snapshot, "宜宾白酒", embedder)
            assert [h for h in snapshot.keyword_search(["梧州"], 5)]
        # An interrupted rebuild changes nothing: the old index keeps answering, in the
        # engine open all along and in a new one.
        (corpus / "c.txt").write_text("新的一篇文章。", encoding="utf-8")
        with pytest.raises(RuntimeError, match="interrupted"):
            sync_index(config, Exploding, rebuild=True)
        fresh = open_engine(config)
        try:
            for engine in (reader, fresh):
                with engine.snapshot() as snapshot:
                    assert snapshot.counts()[0] == 3
                    assert "api-doc" in ids_of(snapshot, "宜宾白酒", embedder)
        finally:
            fresh.close()
    finally:
        reader.close()


QUESTIONS = [
    "宜宾白酒产业2021年的营业收入是多少？",
    "陶溪川直播基地成交额",
    "梧州党代会提出了什么？",
    "宜宾有什么传统小吃？",
    "景德镇陶瓷产业数字化转型",
]


@pytest.fixture(scope="module")
def retrievers(tmp_path_factory):
    """The same corpus indexed by each engine, with the fake embedder."""
    from qa.config import config_from_mapping, resolve_paths

    made = {}
    base = tmp_path_factory.mktemp("engines")
    corpus = base / "corpus"
    corpus.mkdir()
    for name, text in ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    embedder = FakeEmbedder()
    for kind in ("local", "milvus", "local-tantivy"):
        engine, _, backend = kind.partition("-")
        config = resolve_paths(config_from_mapping({
            "engine": engine, "model": {"name": "fake-embedder"},
            "index": {"keyword_backend": backend or "fts5"},
            "chunking": {"max_chars": 60, "min_chars": 10}}), base / kind)
        build_index(config, embedder, corpus, config.index_dir)
        made[kind] = Retriever(config, open_index(config), embedder)
    yield made
    for retriever in made.values():
        retriever.engine.close()


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
@pytest.mark.parametrize("question", QUESTIONS)
def test_both_engines_give_the_same_top_passage(retrievers, question, mode):
    local = retrievers["local"].ask(question, top_k=3, mode=mode)
    milvus = retrievers["milvus"].ask(question, top_k=3, mode=mode)
    assert milvus.passages[0].text == local.passages[0].text
    assert milvus.passages[0].citation == local.passages[0].citation
    assert milvus.passages[0].vector_score == pytest.approx(local.passages[0].vector_score,
                                                            abs=1e-5)
    assert milvus.confident == local.confident


@pytest.mark.parametrize("mode", ["hybrid", "keyword"])
@pytest.mark.parametrize("question", QUESTIONS)
def test_both_keyword_backends_give_the_same_top_passages(retrievers, question, mode):
    fts5 = retrievers["local"].ask(question, top_k=3, mode=mode)
    tantivy = retrievers["local-tantivy"].ask(question, top_k=3, mode=mode)
    # Their BM25 differ in idf (tantivy's log(1 + x) against FTS5's log(x), which gives
    # ~0 to a word in half of these few chunks): the top passage must agree.
    assert tantivy.passages[0].citation == fts5.passages[0].citation
    assert tantivy.confident == fts5.confident


@pytest.mark.integration
def test_the_real_model_gives_the_same_top_passage_on_milvus(real_retriever):
    """The shipped corpus with the real model, copied to Milvus Lite by `migrate` (so the
    vectors are the same), asked the first dev questions of every article."""
    import json
    from pathlib import Path

    config = real_retriever.config
    migrate(config, "milvus")
    milvus_config = config.replace(engine="milvus")
    milvus = Retriever(milvus_config, open_index(milvus_config), real_retriever.embedder)
    lines = (Path(__file__).parent.parent / "benchmarks" / "shipped_dev_questions.jsonl"
             ).read_text(encoding="utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines[::8]]
    try:
        same = sum(milvus.ask(q, top_k=1).passages[0].text
                   == real_retriever.ask(q, top_k=1).passages[0].text for q in questions)
    finally:
        milvus.engine.close()
    assert same == len(questions)


QINGHE = make_document("qinghe", "青禾合作社在宜宾种植白酒用的高粱，2023年收获三百吨。")
QINGHE_QUESTION = "青禾合作社在宜宾种植什么？"


def keyword_top(engine, retriever, question: str, k: int = 10) -> list[tuple[str, float]]:
    """(chunk text, BM25 score) of the k best keyword hits of a question."""
    query = retriever.prepare(question)
    with engine.snapshot() as snapshot:
        hits = snapshot.keyword_search(query.tokens, k)
        texts = snapshot.chunks([i for i, _ in hits])
    return [(texts[i].text, score) for i, score in hits]


def test_a_document_added_after_a_build_scores_as_after_a_rebuild(config, shipped_corpus):
    # Milvus Lite keeps BM25 statistics per segment: a document committed after the build
    # sits in a segment of its own, where a word only it has scored 0.41 instead of 7.58
    # (milvus-lite#293). The Milvus engine scores from its side store's counts instead.
    embedder = FakeEmbedder()
    sync_index(config, lambda: embedder)
    with writable_engine(config, None) as engine:
        Indexer(config, engine, lambda: embedder).put_document(QINGHE)
    scores = []
    for _ in ("added", "rebuilt"):
        engine = open_engine(config)
        try:
            retriever = Retriever(config, engine, embedder)
            for mode in ("keyword", "hybrid"):
                best = retriever.ask(QINGHE_QUESTION, top_k=3, mode=mode).passages[0]
                assert best.citation.doc_id == "qinghe", mode
            scores.append(keyword_top(engine, retriever, QINGHE_QUESTION))
        finally:
            engine.close()
        sync_index(config, lambda: embedder, rebuild=True)
    added, rebuilt = scores
    assert added[0][0] == QINGHE.text
    assert [text for text, _ in added] == [text for text, _ in rebuilt]
    assert [s for _, s in added] == pytest.approx([s for _, s in rebuilt], rel=1e-6)


@pytest.mark.parametrize("budget", [1000, 2])
def test_keyword_scores_after_adds_and_removals_match_the_local_engine(make_config,
                                                                       shipped_corpus,
                                                                       monkeypatch, budget):
    # budget 1000: every chunk holding a question word is scored; 2: Milvus proposes the
    # candidates, and the chunks of the rarest words are added (qa.index.milvus_bm25).
    monkeypatch.setattr(milvus_bm25, "RARE_POSTINGS", budget)
    embedder = FakeEmbedder()
    engines, retrievers = {}, {}
    for kind in ("local", "milvus-lite"):
        config = engine_config(make_config, kind, chunking={"max_chars": 80, "min_chars": 0})
        sync_index(config, lambda: embedder)
        with writable_engine(config, None) as engine:
            indexer = Indexer(config, engine, lambda: embedder)
            indexer.put_document(QINGHE)
            indexer.put_document(make_document("b", "宜宾白酒产业营业收入突破一千六百亿元。"))
            indexer.put_document(make_document("b", "宜宾白酒产业的营业收入。", "燃面。"))
            engine.commit([RemoveDocument(sorted(engine_documents(engine))[0])])
        engines[kind] = open_engine(config)
        retrievers[kind] = Retriever(config, engines[kind], embedder)
    try:
        for question in [QINGHE_QUESTION, "宜宾白酒产业的营业收入", "数字化转型", "燃面"]:
            local, milvus = (keyword_top(engines[k], retrievers[k], question)
                             for k in ("local", "milvus-lite"))
            assert local, question
            assert [t for t, _ in milvus] == [t for t, _ in local], question
            assert [s for _, s in milvus] == pytest.approx([s for _, s in local], rel=1e-6)
    finally:
        for engine in engines.values():
            engine.close()


def engine_documents(engine) -> list[str]:
    with engine.snapshot() as snapshot:
        return [d.doc_id for d in snapshot.documents() if d.doc_id not in ("qinghe", "b")]
