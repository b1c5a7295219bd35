"""`qa check` names each kind of damage, and `--repair` fixes what the store can rebuild."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from qa import cli
from qa.index.check import check_index, repair_index
from qa.index.layout import IndexFolder
from qa.index.saved_index import build_index
from tests.fakes import FakeEmbedder


@pytest.fixture
def built(tmp_path, shipped_corpus, make_config):
    config = make_config(corpus_dir=str(shipped_corpus))
    build_index(config, FakeEmbedder(), shipped_corpus, config.index_dir)
    return config


def store_of(config):
    return IndexFolder(config.index_dir).require_store()


def damage_sql(config, *statements: str) -> None:
    db = sqlite3.connect(store_of(config) / "chunks.sqlite")
    with db:
        for statement in statements:
            db.execute(statement)
    db.close()


def test_a_fresh_index_passes(built):
    result = check_index(built)
    assert result.problems == [] and result.documents == 8 and result.chunks == 130


DAMAGE = {
    "a chunk without its vector": (
        ["DELETE FROM vectors WHERE chunk_id = (SELECT MIN(id) FROM chunks)"],
        "1 chunks have no vector", False),
    "a vector of no chunk": (
        ["INSERT INTO vectors VALUES (999999, zeroblob(256))"],
        "1 vectors belong to no chunk", True),
    "a chunk without keywords": (
        ["DELETE FROM keywords WHERE rowid = (SELECT MIN(id) FROM chunks)"],
        "1 chunks have no keyword entry", True),
    "a keyword entry of no chunk": (
        ["INSERT INTO keywords (rowid, terms) VALUES (999999, '孤儿')"],
        "1 keyword entries belong to no chunk", True),
    "wrong counts": (
        ["UPDATE meta SET value = '99' WHERE key = 'documents'"],
        "recorded counts (99 documents", True),
    "a vector of the wrong size": (
        ["UPDATE vectors SET vector = zeroblob(8) WHERE chunk_id = (SELECT MIN(id) FROM chunks)"],
        "vectors have the wrong size", False),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_each_kind_of_damage_is_named_and_repaired_where_possible(built, kind):
    statements, message, repairable = DAMAGE[kind]
    damage_sql(built, *statements)
    problems = check_index(built).problems
    assert any(message in p for p in problems), problems
    repair_index(built)
    after = check_index(built).problems
    if repairable:
        assert after == []
    else:
        assert any("qa index --rebuild" in p for p in after), after


def test_a_manifest_that_is_missing_or_disagrees_is_named_and_rewritten(built):
    manifest = store_of(built) / "manifest.json"
    manifest.unlink()
    assert any("manifest" in p and "missing" in p for p in check_index(built).problems)
    repair_index(built)
    assert check_index(built).problems == []
    data = json.loads(manifest.read_text(encoding="utf-8"))
    manifest.write_text(json.dumps(data | {"dimension": 12}), encoding="utf-8")
    assert any("(dimension)" in p for p in check_index(built).problems)
    repair_index(built)
    assert check_index(built).problems == []


def test_a_vector_cache_that_disagrees_or_is_garbage_is_named_and_rebuilt(built):
    from qa.index.local_engine import LocalEngine
    from qa.index.vectors import VectorIndex

    store = store_of(built)
    (cache,) = store.glob("vectors-*.faiss")
    engine = LocalEngine(built)
    vectors = VectorIndex.load(cache)
    vectors.remove([int(vectors.ids()[0])])
    vectors.save(cache)
    engine.close()
    assert any("vector cache disagrees" in p for p in check_index(built).problems)
    repair_index(built)
    assert check_index(built).problems == []
    # Garbage is no damage to the index: the cache is rebuilt from the store on open.
    (cache,) = store.glob("vectors-*.faiss")
    cache.write_bytes(b"garbage")
    assert check_index(built).problems == []


@pytest.mark.parametrize("damage", ["lost", "stray"])
def test_a_tantivy_keyword_index_that_disagrees_is_named_and_rebuilt(built, damage):
    import tantivy

    from qa.index import tantivy_keywords
    from qa.index.local_engine import LocalEngine

    assert built.index.keyword_backend == "tantivy"
    LocalEngine(built).close()  # builds the keyword index
    keyword_index = tantivy_keywords.TantivyKeywords(store_of(built))
    first = min(keyword_index.chunk_ids())
    index = tantivy.Index.open(str(keyword_index.path))
    index.register_tokenizer(tantivy_keywords.ANALYZER, tantivy_keywords._analyzer())
    writer = index.writer(heap_size=15_000_000, num_threads=1)
    if damage == "lost":
        writer.delete_documents_by_query(
            tantivy.Query.term_set_query(index.schema, "chunk_id", [first]))
        expected = "(1 chunks missing, 0 of no chunk"
    else:
        stray = tantivy.Document()
        stray.add_unsigned("chunk_id", 999_999)
        stray.add_text("terms", "孤儿")
        writer.add_document(stray)
        expected = "(0 chunks missing, 1 of no chunk"
    writer.commit()
    writer.wait_merging_threads()
    problems = check_index(built).problems
    assert any("keyword index (tantivy) disagrees" in p and expected in p
               for p in problems), problems
    assert any("rebuilt the keyword index (tantivy)" in line for line in repair_index(built))
    assert check_index(built).problems == []


@pytest.mark.parametrize("content", [b"", b"garbage" * 100])
def test_a_garbage_store_is_named_with_what_to_run(built, content):
    (store_of(built) / "chunks.sqlite").write_bytes(content)
    for suffix in ("-wal", "-shm"):
        (store_of(built) / f"chunks.sqlite{suffix}").unlink(missing_ok=True)
    problems = check_index(built).problems
    assert problems and all("qa index --rebuild" in p for p in problems), problems


def test_leftovers_are_notes_not_failures_and_the_next_writer_removes_them(built):
    leftover = built.index_dir / "store-20200101T000000-dead00"
    leftover.mkdir()
    (leftover / "chunks.sqlite").write_bytes(b"half")
    sibling = built.index_dir.parent / f".{built.index_dir.name}.building-x1"
    sibling.mkdir()
    result = check_index(built)
    assert result.problems == [] and len(result.notes) == 2
    done = repair_index(built)
    assert any("store-20200101T000000-dead00" in line for line in done)
    assert not leftover.exists() and not sibling.exists()


def test_qa_check_exits_non_zero_naming_the_problem(built, monkeypatch):
    monkeypatch.setattr(cli, "load_embedder", lambda config: FakeEmbedder())
    config_file = built.index_dir.parent.parent / "check.yaml"
    config_file.write_text(
        f"corpus_dir: {built.corpus_dir}\nindex_dir: {built.index_dir}\n"
        "model:\n  name: fake-embedder\n", encoding="utf-8")
    runner = CliRunner()
    ok = runner.invoke(cli.main, ["check", "--config", str(config_file)])
    assert ok.exit_code == 0 and "ok: 8 documents, 130 chunks" in ok.output
    damage_sql(built, "DELETE FROM keywords WHERE rowid = (SELECT MIN(id) FROM chunks)")
    bad = runner.invoke(cli.main, ["check", "--config", str(config_file)])
    assert bad.exit_code == 1
    assert "1 chunks have no keyword entry" in bad.output and "--repair" in bad.output
    fixed = runner.invoke(cli.main, ["check", "--repair", "--config", str(config_file)])
    assert fixed.exit_code == 0 and "rebuilt the keyword entries" in fixed.output
