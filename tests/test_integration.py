"""The real model on the shipped corpus: the answers a user would check first."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

YIBIN = "2021年宜宾白酒产业的营业收入是多少？"


def test_the_yibin_question_is_answered_at_rank_1_with_its_full_citation(real_retriever):
    answer = real_retriever.ask(YIBIN)
    best = answer.passages[0]
    assert "1600亿元" in best.text
    citation = best.citation
    assert citation.source == "经济参考报"
    assert citation.title == "“宜宾模式”快速复制产融协同效应"
    assert citation.date == "2022-05-19"
    assert citation.url and citation.url.startswith("http://finews.zning.xyz/")
    start, end = best.highlight
    assert "1600亿元" in best.text[start:end]
    assert answer.confident


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_every_mode_finds_the_yibin_passage_in_the_top_5(real_retriever, mode):
    answer = real_retriever.ask(YIBIN, top_k=5, mode=mode)
    assert answer.mode == mode
    assert any("1600亿元" in p.text for p in answer.passages)
    for passage in answer.passages:
        assert -1.0 <= passage.vector_score <= 1.0 and passage.keyword_score >= 0


def test_an_english_question_finds_the_chinese_passage(real_retriever):
    answer = real_retriever.ask("What was the revenue of the Yibin baijiu industry in 2021?")
    assert any("1600亿元" in p.text for p in answer.passages[:3])


def test_the_markdown_article_has_no_date_source_or_url(real_retriever):
    answer = real_retriever.ask("山东省现代轻工纺织2021年营业收入是多少？")
    best = answer.passages[0]
    assert "1.76万亿" in best.text
    assert best.citation.doc_id.startswith("001_")
    assert (best.citation.date, best.citation.source, best.citation.url) == (None, None, None)
    assert best.citation.title


def test_the_jingdezhen_question_marks_the_approval_sentence(real_retriever):
    # Issue 9: the question abbreviates (跨境电商综试区) what the article spells out.
    answer = real_retriever.ask("景德镇的跨境电商综试区是什么时候获批的？", top_k=3)
    best = answer.passages[0]
    start, end = best.highlight
    assert best.citation.doc_id.startswith("004_")
    assert best.text[start:end] == "今年2月，中国(景德镇)跨境电子商务综合试验区获国务院正式批复。"
    assert all(p.also_in == () for p in answer.passages)  # no copies in the shipped corpus
