"""The retriever on a tiny index with the fake embedder: modes, highlight, confidence."""

from __future__ import annotations

import dataclasses

import pytest

from qa.errors import ConfigError, InvalidQuestionError
from qa.fusion import Candidate, blend
from qa.index.store import StoredChunk
from qa.passage_features import wording_bonuses
from qa.retriever import Query, Retriever
from tests.conftest import ARTICLES

# The `retriever` fixture (tests/conftest.py) indexes ARTICLES in chunks of 10-60 characters.


def test_highlight_marks_the_answering_sentence_not_the_first(retriever):
    answer = retriever.ask("宜宾白酒产业2021年的营业收入是多少？", top_k=1)
    best = answer.passages[0]
    start, end = best.highlight
    assert best.text.index("白酒是") < start
    assert best.text[start:end] == "2021年，宜宾白酒产业的营业收入突破1600亿元。"


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_each_mode_ranks_and_reports_both_component_scores(retriever, mode):
    answer = retriever.ask("陶溪川直播基地成交额", top_k=2, mode=mode)
    assert answer.mode == mode and answer.passages[0].citation.doc_id == "jingdezhen"
    best = answer.passages[0]
    assert best.keyword_score > 0 and 0 < best.vector_score <= 1
    assert answer.to_dict()["passages"][0]["scores"] == {
        "vector": round(best.vector_score, 6), "keyword": round(best.keyword_score, 6)}


def test_an_off_topic_question_is_not_confident_but_still_lists_passages(retriever):
    off_topic = retriever.ask("今天北京天气怎么样？")
    assert off_topic.confident is False and off_topic.passages
    assert retriever.ask("梧州第十四次党代会提出了什么？").confident is True


def test_bad_mode_and_top_k_are_rejected(retriever):
    with pytest.raises(InvalidQuestionError, match="mode"):
        retriever.ask("宜宾", mode="fuzzy")
    with pytest.raises(InvalidQuestionError, match="top_k"):
        retriever.ask("宜宾", top_k=0)


def test_the_vector_share_grows_as_fewer_question_words_match(retriever):
    settings = retriever.config.retrieval
    matched = retriever.prepare("陶溪川直播基地成交额")
    with retriever.engine.snapshot() as snapshot:
        keyword = dict(snapshot.keyword_search(matched.tokens, 5))
        assert retriever._vector_weight(snapshot, matched, keyword) == pytest.approx(
            settings.vector_weight_min)
        assert retriever._vector_weight(snapshot, matched, {}) == settings.vector_weight_max
        partly = retriever.prepare("陶溪川的天气和交通")
        hits = dict(snapshot.keyword_search(partly.tokens, 5))
        weight = retriever._vector_weight(snapshot, partly, hits)
    assert settings.vector_weight_min < weight < settings.vector_weight_max


@pytest.mark.parametrize("floor", [0.0, 1.0])
def test_hybrid_ranks_by_the_blend_with_the_configured_cosine_range_floor(
        make_retriever, floor):
    retriever = make_retriever(
        chunking={"max_chars": 60, "min_chars": 10},
        retrieval={"cosine_range_floor": floor, "vector_weight_min": 0.5,
                   "vector_weight_max": 0.5, "in_order_weight": 0.0})
    ranked = retriever.rank(retriever.prepare("宜宾白酒产业的营业收入"), "hybrid", 50)
    expected = blend({c.chunk_id: c.vector for c in ranked},
                     {c.chunk_id: c.keyword for c in ranked}, 0.5, floor)
    assert [(c.chunk_id, c.score) for c in ranked] == [(c.chunk_id, c.score) for c in expected]
    spread = max(c.vector for c in ranked) - min(c.vector for c in ranked)
    assert spread < 1.0
    if floor == 1.0:
        # The cosine side adds at most 0.5 x its spread; the keyword side up to 0.5.
        assert max(c.score for c in ranked) <= 0.5 * spread + 0.5 + 1e-9


def ranked_at_weights(base: Retriever, setting: str, weights: tuple[float, ...],
                      question: str) -> tuple[Query, dict[float, list[Candidate]],
                                              dict[int, StoredChunk]]:
    """`question` ranked in hybrid mode over `base`'s index with the retrieval `setting`
    at each of `weights`; also its Query and the chunks of the first ranking."""
    ranked = {}
    for weight in weights:
        settings = dataclasses.replace(base.config.retrieval, **{setting: weight})
        retriever = Retriever(dataclasses.replace(base.config, retrieval=settings),
                              base.engine, base.embedder)
        try:
            query = retriever.prepare(question)
            ranked[weight] = retriever.rank(query, "hybrid", 50)
        finally:
            retriever.background.close()
    with base.engine.snapshot() as snapshot:
        chunks = snapshot.chunks([c.chunk_id for c in ranked[weights[0]]])
    return query, ranked, chunks


SIBLINGS = {
    # Two paragraphs of one report with the same words; only the first says them in
    # the order the question asks them.
    "report.txt": "青禾港年报\n\n青禾港保税物流园的跨境电商进出口额全年达到186亿元。\n\n"
                  "全年达到新高的是进出口额，跨境电商企业集中在青禾港保税物流园。",
}


def test_hybrid_re_ranks_its_best_candidates_by_the_words_in_the_question_order(
        make_retriever):
    base = make_retriever(SIBLINGS, chunking={"max_chars": 40, "min_chars": 5},
                          retrieval={"in_order_weight": 0.0})
    query, ranked, chunks = ranked_at_weights(base, "in_order_weight", (0.0, 0.2, 1.0),
                                              "青禾港保税物流园跨境电商进出口额全年多少")
    texts = {i: "\n".join(p for p in (c.title, c.section, c.text) if p) for i, c in chunks.items()}
    shares = wording_bonuses(query.text, query.idf, texts)
    in_order = next(i for i in texts if chunks[i].text.startswith("青禾港"))
    scrambled = next(i for i in texts if i != in_order)
    assert shares[in_order] == pytest.approx(1.0) and shares[scrambled] < 0.7
    before = {c.chunk_id: c.score for c in ranked[0.0]}
    for weight in (0.2, 1.0):
        # (blend + weight × share) / (1 + weight): still 0-1, the order by that score.
        after = {c.chunk_id: c.score for c in ranked[weight]}
        for i in texts:
            assert after[i] == pytest.approx((before[i] + weight * shares[i]) / (1 + weight))
            assert 0.0 <= after[i] <= 1.0
        assert [c.chunk_id for c in ranked[weight]] == sorted(after, key=lambda i: -after[i])
    assert ranked[1.0][0].chunk_id == in_order


TITLED = {
    # Two reports whose text says the same thing; only one headline names the port.
    "a.md": "---\ntitle: 青禾港扩建获批\n---\n\n该港区扩建工程今年获批，计划三年完工。\n",
    "b.md": "---\ntitle: 南浦新区规划发布\n---\n\n该新区扩建工程今年获批，计划三年完工。\n",
}


def test_hybrid_re_rank_adds_the_share_of_the_question_in_the_title(make_retriever):
    base = make_retriever(TITLED, retrieval={"in_order_weight": 0.0})
    query, ranked, chunks = ranked_at_weights(base, "title_weight", (0.0, 0.5),
                                              "青禾港扩建工程什么时候获批")
    titled = next(i for i, c in chunks.items() if c.title == "青禾港扩建获批")
    before = {c.chunk_id: c.score for c in ranked[0.0]}
    after = {c.chunk_id: c.score for c in ranked[0.5]}
    shares = wording_bonuses(query.text, query.idf, {i: "" for i in chunks},
                             {i: c.title for i, c in chunks.items()}, (0.0, 1.0))
    assert shares[titled] > 0.3 and min(shares.values()) < shares[titled]
    for i in chunks:
        assert after[i] == pytest.approx((before[i] + 0.5 * shares[i]) / 1.5)
    assert ranked[0.5][0].chunk_id == titled


def test_wording_settings_are_checked(make_config):
    with pytest.raises(ConfigError, match="in_order_weight"):
        make_config(retrieval={"in_order_weight": 1.5})
    with pytest.raises(ConfigError, match="title_weight"):
        make_config(retrieval={"title_weight": -0.1})
    with pytest.raises(ConfigError, match="wording_depth"):
        make_config(retrieval={"wording_depth": 0})


def test_a_cosine_range_floor_outside_0_to_1_is_rejected(make_config):
    with pytest.raises(ConfigError, match="cosine_range_floor"):
        make_config(retrieval={"cosine_range_floor": 1.5})


def test_the_english_bridge_loads_on_the_first_english_question(retriever):
    # Start-up: a Chinese question never pays for the CC-CEDICT tables.
    chinese = retriever.ask("宜宾白酒产业的营业收入", top_k=1)
    assert retriever.bridge.load_seconds is None
    english = retriever.ask("What was the revenue of the Yibin baijiu industry?", top_k=1)
    assert retriever.bridge.load_seconds is not None
    assert english.passages[0].citation.doc_id == chinese.passages[0].citation.doc_id == "yibin"
    assert "宜宾" in retriever.prepare("Yibin revenue").tokens


ZHANG_YI = ("张裔，字君嗣，蜀郡成都人。张裔是蜀汉的官员，张裔博涉史书，张裔与许靖交好。\n\n"
            "建兴八年（230年），他因病去世。他的儿子继承了爵位。")


@pytest.fixture
def zhang_yi(make_retriever):
    return make_retriever({"zhangyi.txt": ZHANG_YI, **ARTICLES},
                          chunking={"max_chars": 45, "min_chars": 10})


def test_the_chunk_that_answers_stands_for_its_document(zhang_yi):
    question = "张裔是什么时候去世的？"
    query = zhang_yi.prepare(question)
    ranked = zhang_yi.rank(query, "hybrid", 10)
    with zhang_yi.engine.snapshot() as snapshot:
        chunks = snapshot.chunks([c.chunk_id for c in ranked])
    found = [(chunks[c.chunk_id], c) for c in ranked]
    subject = next(i for i, (chunk, _) in enumerate(found) if chunk.text.startswith("张裔"))
    answering = next(i for i, (chunk, _) in enumerate(found) if "去世" in chunk.text)
    # As if the chunk naming the subject had ranked first (as it often does on CMRC):
    # the next chunk, which calls him 他, answers and takes its place.
    found[0], found[subject] = found[subject], found[0]
    answering = subject if answering == 0 else answering
    order, scored = zhang_yi.stand_ins(query, found, ["zhangyi"])
    assert order[0] == answering and order[answering] == 0
    assert sorted(order) == list(range(len(found)))
    chosen = found[order[0]][0]
    start, end = zhang_yi.highlights_for(query, found, [order[0]], scored)[0]
    assert chosen.text[start:end] == "建兴八年（230年），他因病去世。"


def test_a_stand_in_keeps_the_order_of_documents_and_scores(zhang_yi):
    answer = zhang_yi.ask("张裔是什么时候去世的？", top_k=3)
    best = answer.passages[0]
    assert best.citation.doc_id == "zhangyi"
    start, end = best.highlight
    assert best.text[start:end] == "建兴八年（230年），他因病去世。"
    texts = [p.text for p in answer.passages]
    assert len(set(texts)) == len(texts)
    scores = [p.score for p in answer.passages]
    assert scores == sorted(scores, reverse=True)
