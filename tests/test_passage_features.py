"""Wording features of a passage against a question (qa.passage_features)."""

from __future__ import annotations

import pytest

from qa.passage_features import (
    in_order_share,
    passage_features,
    question_terms,
    title_share,
    wording_bonuses,
)

IDF = {"青禾": 3.0, "综试区": 2.0, "获批": 1.0}
QUESTION = "青禾综试区是哪天获批的？"


def test_question_terms_follow_the_question_and_keep_its_exact_strings():
    terms = question_terms(QUESTION, IDF)
    assert [t for t, _ in terms.words] == ["青禾", "综试区", "获批"]
    assert terms.total == pytest.approx(6.0)
    quoted = question_terms("“一区三园”布局里的5G工厂在2023年投产了吗", {"布局": 1.0})
    assert quoted.exact == ("一区三园", "5g", "2023")


def test_in_order_counts_the_longest_run_of_question_words_in_its_order():
    terms = question_terms(QUESTION, IDF)
    assert in_order_share(terms, "4月12日，青禾综试区正式获批。") == pytest.approx(1.0)
    # 获批 before 青禾: only the heavier chain (青禾 综试区) counts.
    assert in_order_share(terms, "获批以后，青禾综试区开始建设。") == pytest.approx(5 / 6)
    assert in_order_share(terms, "与本文无关。") == 0.0
    assert in_order_share(question_terms(QUESTION, {}), "青禾") == 0.0


def test_the_window_prefers_matched_words_close_together():
    terms = question_terms(QUESTION, IDF)
    near = passage_features(terms, "青禾综试区获批。" + "另" * 60, window=20)
    far = passage_features(terms, "青禾" + "另" * 60 + "综试区获批。", window=20)
    assert near[0] == pytest.approx(1.0)
    assert far[0] == pytest.approx(3 / 6)


def test_exact_strings_and_the_title():
    terms = question_terms("2023年青禾的进出口额是多少", {"青禾": 2.0, "进出口": 2.0})
    with_number = passage_features(terms, "2023年，青禾进出口额186亿元。", "青禾年报")
    without = passage_features(terms, "2024年，青禾进出口额186亿元。", None)
    assert with_number[2] == 1.0 and without[2] == 0.0
    assert with_number[3] == pytest.approx(0.5) and without[3] == 0.0


def test_matching_is_on_folded_text():
    terms = question_terms("臺灣的ＧＤＰ", {"台湾": 1.0, "gdp": 1.0})
    assert in_order_share(terms, "台湾的GDP增长") == pytest.approx(1.0)


def test_wording_bonuses_score_every_text_given():
    bonuses = wording_bonuses(QUESTION, IDF, {7: "青禾综试区获批", 9: "获批的是青禾"})
    assert bonuses[7] == pytest.approx(1.0) and bonuses[9] == pytest.approx(0.5)


def test_title_share_and_the_weighted_bonus():
    terms = question_terms(QUESTION, IDF)
    assert title_share(terms, "青禾综试区揭牌") == pytest.approx(5 / 6)
    assert title_share(terms, None) == 0.0 and title_share(question_terms("？", {}), "青禾") == 0.0
    texts = {7: "获批的是青禾", 9: "获批的是青禾"}
    titles = {7: "青禾综试区获批", 9: None}
    # Weights (in order, title) average the two shares; the title alone tells them apart.
    bonuses = wording_bonuses(QUESTION, IDF, texts, titles, (0.2, 0.2))
    assert bonuses[7] == pytest.approx((0.5 + 1.0) / 2) and bonuses[9] == pytest.approx(0.25)
    assert wording_bonuses(QUESTION, IDF, texts, titles, (0.0, 0.0)) == {7: 0.0, 9: 0.0}
    assert wording_bonuses(QUESTION, IDF, texts, titles) == wording_bonuses(QUESTION, IDF, texts)
