"""Wire copies: near-duplicate detection, and the retriever folding copies into one result."""

from __future__ import annotations

import pytest

from qa.duplicates import group_duplicates, jaccard, shingles
from qa.index.saved_index import build_index, open_index
from qa.retriever import Retriever
from tests.fakes import FakeEmbedder

STORY = ("今年2月，中国(景德镇)跨境电子商务综合试验区获国务院正式批复，"
         "这是江西省第三个跨境电商综试区。景德镇将依托陶瓷产业优势，"
         "建设线上综合服务平台和线下产业园区，推动陶瓷企业开展跨境电商业务。")
# The same story as another paper printed it: its own opening words, full-width
# punctuation swapped, a word changed.
COPY = ("新华社南昌电 今年2月,中国(景德镇)跨境电子商务综合试验区获国务院正式批复,"
        "这是江西省第三个跨境电商综试区。景德镇将依托陶瓷产业优势,"
        "建设线上综合服务平台与线下产业园区，推动陶瓷企业开展跨境电商业务。")
# Another report of the same event: same facts, different text.
OTHER_REPORT = ("国务院日前批复同意在景德镇设立跨境电子商务综合试验区。"
                "景德镇市商务局表示，将尽快出台实施方案，扶持陶瓷企业出海。")


def test_shingles_ignore_punctuation_spacing_and_width():
    assert shingles("跨境电商，综试区") == shingles("跨境电商 综试区")
    assert shingles("跨境电商，综试区") == shingles("跨境电商,综试区")
    assert shingles("ＡＢＣＤ") == shingles("abcd")
    assert shingles("") == frozenset() and shingles("电商") == frozenset({"电商"})


def test_a_copy_with_small_edits_is_similar_and_another_report_is_not():
    assert jaccard(shingles(STORY), shingles(COPY)) >= 0.8
    assert jaccard(shingles(STORY), shingles(OTHER_REPORT)) < 0.2
    assert jaccard(frozenset(), frozenset()) == 1.0


def test_group_duplicates_keeps_rank_order_and_the_best_copy_first():
    texts = [OTHER_REPORT, COPY, "陶溪川直播基地今年3月成交额达4.35亿元。", STORY, COPY]
    assert group_duplicates(texts, 0.8) == [[0], [1, 3, 4], [2]]
    assert group_duplicates(texts, 1.0) == [[0], [1, 4], [2], [3]]
    # With a limit, a text that would start a further group is dropped, copies are not.
    assert group_duplicates(texts, 0.8, limit=2) == [[0], [1, 3, 4]]


ARTICLES = {
    "jiangxi-daily.md": "---\ntitle: 景德镇获批跨境电商综试区\nsource: 江西日报\n---\n\n" + STORY,
    "xinhua.md": "---\ntitle: 景德镇跨境电商综试区获批\nsource: 新华社\n---\n\n" + COPY,
    "local.md": "---\ntitle: 景德镇设立综试区\nsource: 景德镇日报\n---\n\n" + OTHER_REPORT,
    "taoxichuan.md": "---\ntitle: 陶溪川\n---\n\n景德镇陶溪川直播基地今年3月成交额达4.35亿元。",
}


def open_retriever(tmp_path, make_config, **retrieval):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    config = make_config(chunking={"max_chars": 200, "min_chars": 10},
                         retrieval={"candidates": 10, **retrieval})
    embedder = FakeEmbedder()
    build_index(config, embedder, corpus, config.index_dir)
    return Retriever(config, open_index(config), embedder)


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_copies_come_back_as_one_result_listing_every_document(tmp_path, make_config, mode):
    retriever = open_retriever(tmp_path, make_config)
    try:
        answer = retriever.ask("景德镇跨境电商综试区什么时候获批？", top_k=3, mode=mode)
    finally:
        retriever.engine.close()
    doc_ids = [p.citation.doc_id for p in answer.passages]
    assert len(answer.passages) == 3 and len(set(doc_ids)) == 3
    copies = [p for p in answer.passages if p.also_in]
    assert len(copies) == 1
    carriers = {copies[0].citation.doc_id, *(c.doc_id for c in copies[0].also_in)}
    assert carriers == {"jiangxi-daily", "xinhua"}
    passages = answer.to_dict()["passages"]
    by_doc = {p["citation"]["doc_id"]: p for p in passages}
    assert by_doc["local"]["also_in"] == [] and by_doc["taoxichuan"]["also_in"] == []
    listed = next(p for p in passages if p["also_in"])["also_in"][0]
    assert set(listed) == set(passages[0]["citation"])
    assert listed["source"] in {"江西日报", "新华社"}


def test_collapse_can_be_turned_off(tmp_path, make_config):
    retriever = open_retriever(tmp_path, make_config, collapse_duplicates=False)
    try:
        answer = retriever.ask("景德镇跨境电商综试区什么时候获批？", top_k=2, mode="keyword")
    finally:
        retriever.engine.close()
    assert {p.citation.doc_id for p in answer.passages} == {"jiangxi-daily", "xinhua"}
    assert all(p.also_in == () for p in answer.passages)


@pytest.mark.parametrize("value", [0, 1.5])
def test_duplicate_similarity_must_be_within_0_and_1(make_config, value):
    from qa.errors import ConfigError

    with pytest.raises(ConfigError, match="duplicate_similarity"):
        make_config(retrieval={"duplicate_similarity": value})


def test_qa_ask_names_the_other_copies(tmp_path, make_config):
    from qa.cli import format_answer

    retriever = open_retriever(tmp_path, make_config)
    try:
        answer = retriever.ask("景德镇跨境电商综试区什么时候获批？", top_k=1, mode="keyword")
    finally:
        retriever.engine.close()
    shown = format_answer(answer)
    other = answer.passages[0].also_in[0]
    assert f"亦见于：{other.source} ({other.doc_id})" in shown
