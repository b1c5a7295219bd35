"""The tantivy keyword index (index.keyword_backend: tantivy): derived from the SQLite
store, kept in step with its commits, repaired after a crash between the two commits,
rebuilt when missing or damaged, and ranking like FTS5 on the same tokens."""

from __future__ import annotations

import shutil

import pytest

from qa.filters import Filters
from qa.index import keyword_rescore, tantivy_keywords
from qa.index.engine import PutDocument, RemoveDocument
from qa.index.layout import IndexFolder, hold_lock
from qa.index.local_engine import LocalEngine, create_index
from qa.index.milvus_bm25 import as_fts5_terms
from qa.index.saved_index import build_index
from qa.index.store import StoreReader
from qa.index.tantivy_keywords import TantivyKeywords
from qa.ingest.chunker import chunk_document
from qa.tokenizer import Tokenizer
from tests.fakes import FakeEmbedder
from tests.test_store import SETTINGS, make_document

TOKENIZER = Tokenizer()


def put(doc_id: str, *paragraphs: str, source: str = "经济参考报") -> PutDocument:
    document = make_document(doc_id, *paragraphs)
    document = type(document)(**{**document.__dict__, "source": source})
    chunks = chunk_document(document, SETTINGS)
    vectors = FakeEmbedder().embed_passages([c.text for c in chunks])
    return PutDocument(document, chunks, vectors, [TOKENIZER.tokens(c.text) for c in chunks],
                       "api")


@pytest.fixture
def config(make_config):
    config = make_config(index={"keyword_backend": "tantivy"},
                         chunking={"max_chars": 50, "min_chars": 0})
    with IndexFolder(config.index_dir).writer_lock():
        create_index(config, config.index_dir, FakeEmbedder().dimension)
    return config


@pytest.fixture
def engine(config):
    engine = LocalEngine(config)
    yield engine
    engine.close()


def found(engine: LocalEngine, text: str, **options) -> list[int]:
    with engine.snapshot() as snapshot:
        return [i for i, _ in snapshot.keyword_search(TOKENIZER.tokens(text), 10, **options)]


def held_generation(engine: LocalEngine) -> int | None:
    return TantivyKeywords(engine.store_dir).generation()


def test_the_engine_searches_tantivy_and_keeps_it_at_the_store_generation(engine):
    assert isinstance(engine._state.keyword_index, TantivyKeywords)
    ids = engine.commit([put("a", "景德镇陶瓷产业正在数字化转型。"),
                         put("b", "宜宾白酒产业营业收入增长。")]).chunk_ids
    assert found(engine, "宜宾白酒") == ids["b"]
    assert held_generation(engine) == engine.status()["generation"]
    with engine.snapshot() as snapshot:
        idf = snapshot.idf(["白酒", "产业", "没有的词"])
    assert idf["没有的词"] > idf["白酒"] > idf["产业"] > 0


def test_replace_and_remove_reach_the_keyword_index(engine):
    engine.commit([put("a", "景德镇陶瓷产业正在数字化转型。"), put("b", "宜宾白酒产业。")])
    new = engine.commit([put("a", "赣州脐橙今年丰收。")]).chunk_ids["a"]
    assert found(engine, "景德镇陶瓷") == []
    assert found(engine, "赣州脐橙") == new
    engine.commit([RemoveDocument("a")])
    assert found(engine, "赣州脐橙") == []
    assert found(engine, "宜宾白酒") != []


def test_filters_and_among_restrict_the_ranking(engine):
    ids = engine.commit([put("a", "宜宾白酒产业营业收入。", source="甲报"),
                         put("b", "宜宾白酒产业营业收入增长了。", source="乙报"),
                         put("c", "景德镇陶瓷。", source="乙报")]).chunk_ids
    assert sorted(found(engine, "宜宾白酒")) == sorted(ids["a"] + ids["b"])
    assert found(engine, "宜宾白酒", filters=Filters(sources=("乙报",))) == ids["b"]
    assert found(engine, "宜宾白酒", filters=Filters(sources=("丙报",))) == []
    # A range given backwards keeps nothing (as in the store's SQL).
    assert found(engine, "宜宾白酒", filters=Filters(date_from="2025-01-01",
                                                 date_to="2020-01-01")) == []
    assert sorted(found(engine, "宜宾白酒", filters=Filters(date_from="2022-05-19"))) == sorted(
        ids["a"] + ids["b"])
    assert found(engine, "宜宾白酒", among=ids["a"] + ids["c"]) == ids["a"]
    assert found(engine, "宜宾白酒", among=[]) == []


def test_a_crash_between_the_two_commits_is_repaired_on_the_next_open(config, monkeypatch):
    engine = LocalEngine(config)
    first = engine.commit([put("a", "景德镇陶瓷产业。")]).chunk_ids["a"]

    def crash(self, writer, target):
        raise OSError("killed before the tantivy commit")

    # The store commits; the keyword index stays a generation behind (as if the process
    # died between the two commits).
    monkeypatch.setattr(TantivyKeywords, "_commit", crash)
    second = engine.commit([put("b", "宜宾白酒产业。"), RemoveDocument("a")])
    engine.close()
    monkeypatch.undo()
    assert held_generation(engine) == second.generation - 1
    # Its removals are still hidden: the hits are checked against the store's snapshot.
    reopened = LocalEngine(config)
    try:
        assert held_generation(reopened) == second.generation
        assert found(reopened, "宜宾白酒") == second.chunk_ids["b"]
        assert found(reopened, "景德镇陶瓷") == []
        assert first
    finally:
        reopened.close()


def test_a_crash_inside_the_tantivy_commit_is_repaired_on_the_next_open(config):
    """A writer killed inside tantivy's commit leaves the files it wrote (a deletion
    bitset named by the commit's opstamp, listed as managed) without the meta that
    would use them; the next catch-up makes the same commit and must not collide."""
    engine = LocalEngine(config)
    engine.commit([put("a", "景德镇陶瓷产业。"), put("b", "宜宾白酒产业。")])
    folder = engine.store_dir / tantivy_keywords.FOLDER
    before = engine.store_dir / "before.tantivy"
    shutil.copytree(folder, before)
    removed = engine.commit([RemoveDocument("a")])
    engine.close()
    written = {p.name for p in folder.iterdir()} - {p.name for p in before.iterdir()}
    assert any(name.endswith(".del") for name in written)
    # Back to the state before that commit, plus what the killed writer left behind.
    for name in written | {".managed.json"}:
        shutil.copy(folder / name, before / name)
    shutil.rmtree(folder)
    before.rename(folder)
    assert held_generation(engine) == removed.generation - 1
    reopened = LocalEngine(config)
    try:
        assert held_generation(reopened) == removed.generation
        assert found(reopened, "景德镇陶瓷") == []
        assert found(reopened, "宜宾白酒") != []
    finally:
        reopened.close()


def test_a_missing_or_damaged_index_is_rebuilt_from_the_store(config, engine):
    ids = engine.commit([put("a", "宜宾白酒产业。")]).chunk_ids["a"]
    folder = engine.store_dir / tantivy_keywords.FOLDER
    engine.close()
    shutil.rmtree(folder)
    again = LocalEngine(config)
    assert found(again, "宜宾白酒") == ids
    again.close()
    (folder / "meta.json").write_text("not json")
    again = LocalEngine(config)
    assert found(again, "宜宾白酒") == ids
    again.close()


def test_another_writers_commit_is_seen_after_a_refresh(config, engine):
    engine.commit([put("a", "景德镇陶瓷。")])
    other = LocalEngine(config)  # another process, as far as the files go
    try:
        ids = other.commit([put("b", "宜宾白酒产业。")]).chunk_ids["b"]
        engine.refresh()
        assert found(engine, "宜宾白酒") == ids
    finally:
        other.close()


def test_fts5_and_tantivy_rank_alike_on_the_same_tokens(make_config, config, engine):
    paragraphs = ["宜宾白酒产业营业收入增长。", "景德镇陶瓷产业正在数字化转型。",
                  "赣州脐橙今年丰收，白酒也卖得好。", "宜宾的燃面是传统小吃。",
                  "陶溪川直播基地成交额达4.35亿元。", "四川宜宾发展白酒和新能源产业。"]
    changes = [put(f"d{n}", text) for n, text in enumerate(paragraphs)]
    engine.commit(changes)
    fts5 = LocalEngine(config.replace(index=type(config.index)(keyword_backend="fts5")))
    try:
        assert fts5._state.keyword_index is None
        for question in ("宜宾白酒", "陶瓷产业", "直播成交额", "传统小吃燃面"):
            # tantivy proposes, FTS5's formula scores: the same hits, order and scores.
            assert_same_scores(scored(engine, question), scored(fts5, question))
            # Named chunks (a hybrid question's vector hits) are scored from their FTS5
            # rows without a tantivy search: the same scores as FTS5's own.
            with engine.snapshot() as snapshot:
                among = [row[0] for row in snapshot.db.execute(
                    "SELECT id FROM chunks ORDER BY id DESC")]
            assert_same_scores(scored(engine, question, among=among),
                               scored(fts5, question, among=among))
    finally:
        fts5.close()


def scored(engine: LocalEngine, text: str, **options) -> list[tuple[int, float]]:
    with engine.snapshot() as snapshot:
        return snapshot.keyword_search(TOKENIZER.tokens(text), 10, **options)


def assert_same_scores(hits: list[tuple[int, float]], expected: list[tuple[int, float]]):
    assert [i for i, _ in hits] == [i for i, _ in expected]
    assert [s for _, s in hits] == pytest.approx([s for _, s in expected], rel=1e-9)


def test_the_shipped_corpus_scores_alike_with_both_backends(make_config, shipped_corpus):
    # tantivy's own BM25 put two chunks of the Jingdezhen article 0.009 apart where FTS5
    # puts them 0.23 apart; rescored, its scores are FTS5's.
    config = make_config(corpus_dir=str(shipped_corpus), index={"keyword_backend": "fts5"})
    build_index(config, FakeEmbedder(), shipped_corpus, config.index_dir)
    fts5 = LocalEngine(config)
    tantivy = LocalEngine(config.replace(index=type(config.index)(keyword_backend="tantivy")))
    try:
        assert isinstance(tantivy._state.keyword_index, TantivyKeywords)
        for question in ("景德镇的跨境电商综试区是什么时候获批的？", "宜宾白酒产业的营业收入",
                         "赣州脐橙的种植面积有多大", "陶溪川直播基地的成交额"):
            expected = scored(fts5, question)
            assert len(expected) == 10
            assert_same_scores(scored(tantivy, question), expected)
    finally:
        fts5.close()
        tantivy.close()


def test_the_fts5_statistics_record_gives_rows_and_tokens(engine):
    engine.commit([put("a", "景德镇陶瓷产业正在数字化转型。"), put("b", "宜宾白酒产业。")])
    with engine.snapshot() as snapshot:
        db = snapshot.db
        rows, tokens = keyword_rescore.fts5_totals(db)
        assert rows == db.execute("SELECT COUNT(*) FROM keywords").fetchone()[0] > 0
        assert tokens == sum(len(as_fts5_terms(t.split()))
                             for (t,) in db.execute("SELECT terms FROM keywords"))
    # Values past one byte and the 9-byte form.
    assert keyword_rescore._varints(bytes([0xBD, 0x84, 0x48, 0x05])) == [1_000_008, 5]
    assert keyword_rescore._varints(bytes([0xFF] * 8 + [0x01])) == [(2 ** 56 - 1) << 8 | 1]


def test_a_refresh_that_found_the_index_busy_catches_up_later(config, engine, monkeypatch):
    engine.commit([put("a", "景德镇陶瓷。")])
    other = LocalEngine(config)
    try:
        # Another writer commits to the store but dies before its tantivy commit ...
        monkeypatch.setattr(TantivyKeywords, "_commit", lambda *args: (_ for _ in ()).throw(
            OSError("killed before the tantivy commit")))
        ids = other.commit([put("b", "宜宾白酒产业。")]).chunk_ids["b"]
        monkeypatch.undo()
        # ... and while someone holds the keyword index's lock, a refresh cannot repair it.
        with hold_lock(engine.store_dir / tantivy_keywords.LOCK_FILE, "test"):
            engine.refresh()
            assert found(engine, "宜宾白酒") == []
        # The store has not moved since, yet the next refresh catches the index up.
        engine.refresh()
        assert found(engine, "宜宾白酒") == ids
    finally:
        other.close()


def test_counts_that_still_include_deleted_chunks_are_capped(engine):
    # tantivy's doc_freq counts deleted chunks until their segment is merged: a word of
    # a document replaced many times can be "held" by more chunks than there are.
    ids = engine.commit([put("a", "宜宾白酒产业。"), put("b", "景德镇陶瓷。")]).chunk_ids
    with engine.snapshot() as snapshot:
        rows, _ = keyword_rescore.fts5_totals(snapshot.db)
        tokens = TOKENIZER.tokens("宜宾白酒")
        hits = [(i, 0.0) for i in ids["a"] + ids["b"]]
        found = keyword_rescore.rescore(snapshot.db, tokens, hits,
                                        {t: rows + 5 for t in tokens}, 10)
    assert [i for i, _ in found] == ids["a"]
    assert found[0][1] > 0


def test_the_lengths_fts5_recorded_are_the_lengths_counted_from_the_tokens(engine):
    # keyword_rescore reads each candidate's length from FTS5's docsize record.
    ids = engine.commit([put("a", "one'80 2021 年 4.5% c++ a-b_c 景德镇陶瓷产业。"),
                         put("b", "\x1c分隔\x1f符 e5-small。宜宾白酒产业的营业收入。")]).chunk_ids
    chunk_ids = ids["a"] + ids["b"]
    with engine.snapshot() as snapshot:
        lengths = keyword_rescore.fts5_lengths(snapshot.db, chunk_ids + [10_000])
        terms = dict(snapshot.db.execute(
            f"SELECT rowid, terms FROM keywords WHERE rowid IN ({','.join('?' * len(chunk_ids))})",
            chunk_ids).fetchall())
    assert lengths == {i: len(as_fts5_terms(terms[i].split())) for i in chunk_ids}
    assert all(lengths.values())


def record_calls(monkeypatch, owner, name):
    """Wrap the method `owner.name` so that every call's argument is recorded (as a
    list); returns the record and the method as it was."""
    inner = getattr(owner, name)
    calls = []

    def recording(self, argument):
        calls.append(list(argument))
        return inner(self, argument)

    monkeypatch.setattr(owner, name, recording)
    return calls, inner


def test_a_snapshot_looks_each_tokens_count_up_once(engine, monkeypatch):
    engine.commit([put("a", "宜宾白酒产业。"), put("b", "景德镇陶瓷产业。")])
    asked, inner = record_calls(monkeypatch, TantivyKeywords, "document_frequencies")
    tokens = TOKENIZER.tokens("宜宾白酒产业") + ["没有的词"]
    with engine.snapshot() as snapshot:
        first = snapshot.document_frequencies(tokens)
        again = snapshot.document_frequencies(tokens[:2])
        idf = snapshot.idf(tokens)
        hits = snapshot.keyword_search(tokens, 5)
    assert asked == [list(dict.fromkeys(tokens))]
    assert first == inner(engine._state.keyword_index, tokens)
    assert "没有的词" not in first and again == {t: first[t] for t in tokens[:2]}
    assert idf["产业"] < idf["宜宾"] and hits
    with engine.snapshot() as snapshot:  # the next snapshot asks again
        snapshot.document_frequencies(tokens)
    assert len(asked) == 2


def test_a_snapshot_reads_each_chunk_once(engine, monkeypatch):
    ids = engine.commit([put("a", "宜宾白酒产业。", "景德镇陶瓷产业。")]).chunk_ids["a"]
    assert len(ids) == 2
    read, inner = record_calls(monkeypatch, StoreReader, "chunks")
    with engine.snapshot() as snapshot:
        first = snapshot.chunks([ids[1]])
        both = snapshot.chunks([ids[1], 10_000, ids[0]])
        expected = inner(snapshot, ids)
    assert read == [[ids[1]], [10_000, ids[0]]]
    assert first == {ids[1]: expected[ids[1]]} and both == expected


def test_a_bulk_writer_catches_the_keyword_index_up_every_n_commits_and_at_the_end(engine):
    generations = []
    with engine.keywords_deferred(every=3):
        for number in range(4):
            store = engine.commit([put(f"d{number}", f"第{number}篇：宜宾白酒产业。")]).generation
            generations.append((store, held_generation(engine)))
    # The third commit caught it up; the others left it for later.
    assert [store == held for store, held in generations] == [False, False, True, False]
    assert held_generation(engine) == engine.status()["generation"]


def test_other_readers_find_a_bulk_writers_chunks_by_keyword_at_once(config, engine):
    reader = LocalEngine(config)  # another process, as far as the files go
    try:
        with engine.keywords_deferred(every=100):
            ids = engine.commit([put("a", "景德镇陶瓷产业。")]).chunk_ids["a"]
            assert held_generation(engine) < engine.status()["generation"]
            # The reader's snapshot catches the keyword index up before it searches.
            assert found(reader, "景德镇陶瓷") == ids
            engine.commit([RemoveDocument("a")])
            assert found(reader, "景德镇陶瓷") == []
    finally:
        reader.close()


def test_a_bulk_writer_that_dies_leaves_an_index_the_next_open_catches_up(config, engine):
    from qa.index.check import check_index

    with pytest.raises(KeyboardInterrupt), engine.keywords_deferred(every=100):
        ids = engine.commit([put("a", "景德镇陶瓷产业。")]).chunk_ids["a"]
        raise KeyboardInterrupt  # no catch-up at the end of a block that failed
    engine.close()
    held = held_generation(engine)
    problems = check_index(config).problems  # its engine catches the index up on open
    reopened = LocalEngine(config)
    try:
        assert held < reopened.status()["generation"] == held_generation(reopened)
        assert problems == []
        assert found(reopened, "景德镇陶瓷") == ids
    finally:
        reopened.close()


def test_document_frequencies_leave_out_replaced_chunks_before_a_merge(engine):
    engine.commit([put("a", "景德镇陶瓷产业。"), put("b", "宜宾白酒产业。")])
    engine.commit([put("a", "景德镇陶瓷产业正在转型。")])  # the old chunk is deleted, unmerged
    index = engine._state.keyword_index
    searcher = index._opened().searcher()
    assert searcher.doc_freq("terms", "陶瓷") == 2  # the term dictionary still counts it
    with engine.snapshot() as snapshot:
        assert snapshot.keyword_index.document_frequencies(["陶瓷", "产业", "没有的词"]) == {
            "陶瓷": 1, "产业": 2}


def test_a_bulk_writers_own_keyword_search_catches_the_index_up_first(engine):
    with engine.keywords_deferred(every=100):
        ids = engine.commit([put("a", "景德镇陶瓷产业。")]).chunk_ids["a"]
        with engine.snapshot() as snapshot:  # a lookup by id leaves it behind
            snapshot.document_info("a")
        assert held_generation(engine) < engine.status()["generation"]
        assert found(engine, "景德镇陶瓷") == ids
        assert held_generation(engine) == engine.status()["generation"]
