"""Fusion ordering."""

from __future__ import annotations

import pytest

from qa.fusion import add_bonuses, blend, reciprocal_rank, single


def test_blend_puts_a_chunk_strong_on_both_sides_first():
    vector = {1: 0.90, 2: 0.82, 3: 0.85}
    keyword = {1: 2.0, 2: 9.0, 3: 8.0}
    ranked = blend(vector, keyword, vector_weight=0.5)
    assert ranked[0].chunk_id == 3 and {c.chunk_id for c in ranked[1:]} == {1, 2}
    assert ranked[0].vector == 0.85 and ranked[0].keyword == 8.0


@pytest.mark.parametrize(("weight", "first"), [(0.0, 2), (1.0, 1)])
def test_blend_weight_zero_is_keywords_only_and_one_is_vectors_only(weight, first):
    ranked = blend({1: 0.9, 2: 0.7}, {1: 1.0, 2: 5.0}, vector_weight=weight)
    assert ranked[0].chunk_id == first


def test_a_chunk_no_keyword_matched_scores_zero_on_that_side():
    ranked = blend({1: 0.9, 2: 0.88, 3: 0.8}, {2: 3.0}, vector_weight=0.5)
    assert ranked[0].chunk_id == 2 and ranked[1].keyword == 0.0


def test_reciprocal_rank_and_single_orderings_are_stable():
    vector = {1: 0.9, 2: 0.8, 3: 0.7}
    keyword = {2: 5.0, 3: 4.0}
    assert [c.chunk_id for c in reciprocal_rank(vector, keyword, 0.5)] == [2, 3, 1]
    assert [c.chunk_id for c in single(vector, keyword, "keyword")][:2] == [2, 3]
    assert [c.chunk_id for c in single({1: 0.5, 2: 0.5}, {}, "vector")] == [1, 2]


# A large pool of similar news: the candidates' cosines lie within 0.06, the right
# chunk (1) has the clear keyword lead and the lower cosine by 0.02.
NEWS_VECTOR = {1: 0.86, 2: 0.88, 3: 0.82}
NEWS_KEYWORD = {1: 10.0, 2: 9.0, 3: 1.0}


def test_min_max_stretches_a_tiny_cosine_lead_until_it_outvotes_the_keywords():
    assert blend(NEWS_VECTOR, NEWS_KEYWORD, vector_weight=0.4)[0].chunk_id == 2


def test_a_cosine_range_floor_keeps_a_tiny_cosine_lead_small():
    ranked = blend(NEWS_VECTOR, NEWS_KEYWORD, vector_weight=0.4, cosine_range_floor=0.2)
    assert [c.chunk_id for c in ranked] == [1, 2, 3]
    # The cosine side gives 0.4 x 0.06 / 0.2 at most, the keyword side 0.6 x 1.
    assert ranked[0].score == pytest.approx(0.4 * 0.04 / 0.2 + 0.6 * 1.0)


def test_a_floor_below_the_cosine_range_changes_nothing():
    vector = {1: 0.95, 2: 0.70, 3: 0.80}
    keyword = {1: 2.0, 2: 9.0, 3: 8.0}
    plain = blend(vector, keyword, vector_weight=0.5)
    floored = blend(vector, keyword, vector_weight=0.5, cosine_range_floor=0.2)
    assert [(c.chunk_id, c.score) for c in plain] == [(c.chunk_id, c.score) for c in floored]


def test_bonuses_re_rank_within_0_to_1():
    ranked = blend({1: 0.9, 2: 0.8, 3: 0.7}, {1: 5.0, 2: 4.0, 3: 0.0}, 0.5)
    assert [c.chunk_id for c in ranked] == [1, 2, 3]
    boosted = add_bonuses(ranked, {2: 1.0}, 1.0)
    assert [c.chunk_id for c in boosted] == [2, 1, 3]
    scores = {c.chunk_id: c.score for c in boosted}
    assert scores == pytest.approx({1: 0.5, 2: (0.65 + 1.0) / 2, 3: 0.0})
    assert [(c.vector, c.keyword) for c in boosted] == [(0.8, 4.0), (0.9, 5.0), (0.7, 0.0)]
    assert add_bonuses(ranked, {}, 0.0) == ranked
