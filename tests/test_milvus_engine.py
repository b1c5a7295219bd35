"""What only the Milvus engine has: its token spelling, recovery from an interrupted commit,
`qa check` on it, its config, and the CLI with `engine: milvus` (Milvus Lite)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import pytest
from click.testing import CliRunner
from pymilvus import MilvusException

from qa import cli
from qa.config import config_from_mapping
from qa.errors import ConfigError, IndexMissingError
from qa.index.check import check_index, repair_index
from qa.index.engine import Filters, RemoveDocument
from qa.index.engines import fresh_engine, open_engine, writable_engine
from qa.index.milvus_collection import MilvusClient
from qa.index.milvus_engine import MilvusEngine
from qa.index.milvus_layout import leftovers
from qa.index.milvus_query import encode_terms, milvus_filter
from tests.fakes import FakeEmbedder
from tests.test_cli import YIBIN
from tests.test_store import make_document, put


@pytest.fixture
def config(make_config):
    return make_config(engine="milvus", chunking={"max_chars": 50, "min_chars": 0})


@pytest.fixture
def engine(config):
    with writable_engine(config, FakeEmbedder) as engine:
        yield engine


def test_tokens_are_spelled_as_one_ascii_word_each():
    assert encode_terms(["宜宾", "1.76", "jd.com", " "]) == " ".join(
        "x" + t.encode().hex() for t in ["宜宾", "1.76", "jd.com"])
    assert encode_terms(["长" * 100]).startswith("h") and len(encode_terms(["长" * 100])) == 33
    assert encode_terms(["宜宾", "1.76"], "jieba") == "宜宾 1.76"


def test_filters_become_one_expression():
    assert milvus_filter(None) == milvus_filter(Filters()) == ""
    assert milvus_filter(Filters(sources=('说"明"',), date_to="2024-01-01")) == (
        'source in ["说\\"明\\""] and date != "" and date <= "2024-01-01"')


def test_an_interrupted_commit_is_finished_or_undone_by_the_next(engine, config, monkeypatch):
    ids = engine.commit([put(make_document("a", "景德镇陶瓷。")),
                         put(make_document("b", "宜宾白酒。"))]).chunk_ids
    # A crash after Milvus took rows but before the side store committed them: stray rows.
    row = engine.client.query(engine.name, ids=ids["a"], output_fields=["*"])[0]
    stray = {**row, "id": max(ids["b"]) + 7}
    del stray["sparse"]
    # A crash after the side store committed a removal but before Milvus deleted the rows.
    real_delete = engine.client.delete

    def failing_delete(name, ids=None, **kwargs):
        if ids:
            raise MilvusException(message="connection lost")
        return real_delete(name, ids=ids, **kwargs)

    monkeypatch.setattr(engine.client, "delete", failing_delete)
    with pytest.raises(Exception, match="connection lost"):
        engine.commit([RemoveDocument("b")])
    monkeypatch.setattr(engine.client, "delete", real_delete)
    engine.client.upsert(engine.name, [stray])
    query = FakeEmbedder().embed_queries(["宜宾白酒。"])[0]
    with engine.snapshot() as snapshot:
        # Neither the stray row nor the removed document's chunk is ever returned.
        assert {i for i, _ in snapshot.vector_search(query, 10)} == set(ids["a"])
        assert snapshot.counts() == (1, 1)
    checked = check_index(config)
    assert any("belong to no chunk" in p for p in checked.problems)
    assert any("removed chunks are still in Milvus" in n for n in checked.notes)
    assert repair_index(config) == ["deleted 2 Milvus rows of no chunk"]
    assert check_index(config).problems == []
    # The next commit also cleans up what an interrupted one left.
    engine.client.upsert(engine.name, [stray])
    engine.commit([put(make_document("c", "梧州数字经济。"))])
    assert check_index(config).problems == []


def test_opening_a_missing_index_says_what_to_run(config):
    with pytest.raises(IndexMissingError, match="qa index"):
        open_engine(config)


def test_milvus_settings_are_checked():
    assert config_from_mapping({"engine": "milvus"}).milvus.collection == "newsqa_chunks"
    with pytest.raises(ConfigError, match="engine must be one of"):
        config_from_mapping({"engine": "elastic"})
    with pytest.raises(ConfigError, match="unknown key 'url'"):
        config_from_mapping({"milvus": {"url": "http://x"}})
    with pytest.raises(ConfigError, match="analyzer"):
        config_from_mapping({"milvus": {"analyzer": "chinese"}})
    with pytest.raises(ConfigError, match="integers"):
        config_from_mapping({"milvus": {"index_params": {"M": "16"}}})


def test_the_cli_on_milvus_lite_index_ask_check_and_migrate_back(tmp_path, shipped_corpus,
                                                                 monkeypatch):
    (tmp_path / "config.yaml").write_text(
        "corpus_dir: corpus\nindex_dir: embeddings/index\nengine: milvus\n"
        "model:\n  name: fake-embedder\nmilvus:\n  uri: embeddings/lite.db\n"
        "  side_store: embeddings/side.sqlite\n", encoding="utf-8")
    monkeypatch.setattr(cli, "load_embedder", lambda config: FakeEmbedder())
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(cli.main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert "synced: 8 added" in run("index")
    assert not (tmp_path / "embeddings" / "index").exists()
    answer = json.loads(run("ask", YIBIN, "--json", "-k", "1"))
    assert answer["passages"][0]["citation"]["doc_id"] == "003_f6f549922cc68d70"
    assert "ok: 8 documents" in run("check")
    assert "0 added, 0 replaced, 0 removed, 8 unchanged" in run("index")
    assert "copied 8 documents" in run("migrate", "--to", "local")
    local = tmp_path / "local.yaml"
    local.write_text((tmp_path / "config.yaml").read_text().replace("engine: milvus",
                                                                     "engine: local"))
    again = json.loads(run("ask", YIBIN, "--json", "-k", "1", "--config", str(local)))
    assert again["passages"][0]["text"] == answer["passages"][0]["text"]
    assert "removed 003_f6f549922cc68d70" in run("remove", "003_f6f549922cc68d70")
    assert "ok: 7 documents" in run("check")


def test_a_killed_rebuild_leaves_leftovers_that_the_next_writer_drops(engine, config,
                                                                     monkeypatch):
    engine.commit([put(make_document("a", "景德镇陶瓷。"))])
    live = engine.name
    # A rebuild killed before its switch: nothing drops the pair it was filling.
    monkeypatch.setattr(MilvusEngine, "discard", lambda self: None)
    with pytest.raises(RuntimeError, match="killed"):
        with fresh_engine(config, engine.dimension) as building:
            building.commit([put(make_document("b", "宜宾白酒。"))])
            raise RuntimeError("killed")
    collections, files = leftovers(engine.client, config.milvus)
    assert len(collections) == 1 and len(files) >= 1
    with engine.snapshot() as snapshot:
        assert snapshot.counts() == (1, 1)
    assert any("interrupted rebuild" in n for n in check_index(config).notes)
    with writable_engine(config, None) as writer:
        assert writer.name == live
        assert leftovers(writer.client, config.milvus) == ([], [])


def test_an_index_made_before_the_alias_is_read_and_its_rebuild_takes_the_alias(config):
    with writable_engine(config, FakeEmbedder) as engine:
        engine.commit([put(make_document("a", "景德镇陶瓷。"))])
        client, alias, side = engine.client, config.milvus.collection, engine.side_path
        # The layout of the first Milvus engine: a collection named like the alias.
        client.drop_alias(alias)
        client.release_collection(engine.name)
        client.rename_collection(engine.name, alias)
    for suffix in ("", "-wal", "-shm"):
        if (path := side.with_name(side.name + suffix)).exists():
            path.rename(config.milvus.side_store.with_name(config.milvus.side_store.name + suffix))
    old = open_engine(config)
    try:
        assert old.name == alias
        with old.snapshot() as snapshot:
            assert snapshot.counts() == (1, 1)
        with fresh_engine(config, old.dimension) as building:
            building.commit([put(make_document("b", "宜宾白酒。"))])
        with old.snapshot() as snapshot:  # followed the rebuild
            assert [d.doc_id for d in snapshot.documents()] == ["b"]
        assert old.name.startswith(alias + "__") and not config.milvus.side_store.exists()
        assert leftovers(old.client, config.milvus) == ([], [])
    finally:
        old.close()


def test_rows_are_flushed_once_per_build_and_after_each_live_commit(config, monkeypatch,
                                                                     caplog):
    # Unflushed rows are scanned row by row by every search (scripts/milvus_flush_cost.py).
    flushed: list[str] = []
    real_flush = MilvusClient.flush

    def counting_flush(self, name, **kwargs):
        flushed.append(name)
        return real_flush(self, name, **kwargs)

    monkeypatch.setattr(MilvusClient, "flush", counting_flush)
    with fresh_engine(config, FakeEmbedder().dimension) as engine:
        for name in ("a", "b", "c"):
            engine.commit([put(make_document(name, "景德镇陶瓷。"))])
        assert flushed == []  # a build's batches are flushed together when it goes live
        built = engine.name
    assert flushed == [built]
    with writable_engine(config, FakeEmbedder) as engine:
        engine.commit([put(make_document("d", "宜宾白酒。"))])
        assert flushed == [built, built]

        def refusing_flush(self, name, **kwargs):
            raise MilvusException(message="flush rate limit")

        monkeypatch.setattr(MilvusClient, "flush", refusing_flush)
        ids = engine.commit([put(make_document("e", "宜宾白酒。"))]).chunk_ids
        assert "did not flush" in caplog.text  # refused: logged, the change is kept
        query = FakeEmbedder().embed_queries(["宜宾白酒。"])[0]
        with engine.snapshot() as snapshot:
            assert set(ids["e"]) <= {i for i, _ in snapshot.vector_search(query, 10)}


def test_a_bm25_search_among_some_chunks_scores_them_as_the_full_search(engine):
    # Measured on Milvus Lite: before a flush, a search filtered to `id in [...]` gave
    # other (smaller) BM25 scores than the full search, so hybrid mode's filled-in
    # keyword scores were off. Scores now come from the side store; both ways must agree.
    words = [["宜宾", "白酒", "产业"], ["宜宾", "的", "白酒", "和", "茶叶"], ["景德镇", "陶瓷"],
             ["白酒", "出口", "增长"], ["宜宾", "港口"], ["茶叶", "价格"], ["宜宾", "白酒", "宜宾"]]
    changes = []
    for i, tokens in enumerate(words):
        change = put(make_document(f"d{i}", "".join(tokens) + "。"))
        changes.append(dataclasses.replace(change, tokens=[tokens]))
    engine.commit(changes)
    tokens = ["宜宾", "白酒"]
    with engine.snapshot() as snapshot:
        full = dict(snapshot.keyword_search(tokens, 10))
        some = sorted(full)[1:]
        among = dict(snapshot.keyword_search(tokens, 10, among=some))
    assert len(full) >= 3
    assert among == pytest.approx({i: full[i] for i in some})


def test_bm25_statistics_follow_every_change_and_a_failed_commit_leaves_them(engine, config,
                                                                            monkeypatch):
    engine.commit([put(make_document("a", "景德镇陶瓷。")), put(make_document("b", "宜宾白酒。")),
                   put(make_document("c", "宜宾白酒。"))])
    engine.commit([put(make_document("a", "宜宾白酒。", "景德镇陶瓷。")), RemoveDocument("c")])
    with engine.snapshot() as snapshot:
        before = snapshot.keyword_search(["宜宾白酒。", "景德镇陶瓷。"], 10)
    assert len(before) == 3
    assert check_index(config).problems == []

    def failing_upsert(name, rows, **kwargs):
        raise MilvusException(message="connection lost")

    monkeypatch.setattr(engine.client, "upsert", failing_upsert)
    with pytest.raises(Exception, match="connection lost"):
        engine.commit([put(make_document("d", "宜宾白酒。")), RemoveDocument("a")])
    with engine.snapshot() as snapshot:
        assert snapshot.keyword_search(["宜宾白酒。", "景德镇陶瓷。"], 10) == before
    assert check_index(config).problems == []
    db = sqlite3.connect(engine.side_path)
    try:
        db.execute("UPDATE keyword_totals SET length = length + 1")
        db.commit()
    finally:
        db.close()
    assert any("BM25 statistics" in p for p in check_index(config).problems)


def test_a_side_store_made_before_bm25_statistics_is_read_with_milvus_scores(config, caplog):
    with writable_engine(config, FakeEmbedder) as engine:
        ids = engine.commit([put(make_document("a", "宜宾白酒。"))]).chunk_ids["a"]
        side = engine.side_path
    db = sqlite3.connect(side)
    try:
        db.executescript("DROP TABLE postings; DROP TABLE chunk_lengths;"
                         " DROP TABLE keyword_totals;")
    finally:
        db.close()
    with writable_engine(config, FakeEmbedder) as engine:
        assert "keeps no BM25 statistics" in caplog.text
        added = engine.commit([put(make_document("b", "景德镇陶瓷。"))]).chunk_ids["b"]
        with engine.snapshot() as snapshot:
            assert [i for i, _ in snapshot.keyword_search(["宜宾白酒。"], 5)] == ids
            assert [i for i, _ in snapshot.keyword_search(["景德镇陶瓷。"], 5)] == added
    checked = check_index(config)
    assert checked.problems == []
    assert any("keeps no BM25 statistics" in n for n in checked.notes)
