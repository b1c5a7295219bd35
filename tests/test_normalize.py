"""Folding for matching: the shortcut for text t2s would not change gives OpenCC's result."""

from __future__ import annotations

import unicodedata

import pytest

from qa.normalize import _fold, _needs_t2s, _to_simplified, fold, fold_quickly


def through_opencc(text: str) -> str:
    return _to_simplified().convert(unicodedata.normalize("NFKC", text)).lower()


@pytest.mark.parametrize("text", [
    "青禾市跨境电商进出口额达到186.4亿元",   # simplified: skips OpenCC
    "臺灣的ＧＤＰ成長",                      # traditional and full-width
    "他反覆思量，一目瞭然",                   # phrases that change characters the table keeps
    "沈船打捞", "Ｈｅｌｌｏ　World", "",
])
def test_fold_matches_opencc_on_every_kind_of_text(text):
    assert _fold(text) == through_opencc(text) == fold(text)


def test_opencc_is_needed_for_traditional_characters_and_phrase_only_changes():
    assert _needs_t2s("臺灣") and _needs_t2s("反覆") and _needs_t2s("一目瞭然")
    # 覆 alone is left as it is by t2s, so it needs no conversion; nor does simplified text.
    assert not _needs_t2s("覆盖") and not _needs_t2s("青禾市的一年")
    assert through_opencc("覆盖") == "覆盖"


def test_fold_quickly_converts_characters_one_by_one():
    assert fold_quickly("青禾市ＧＤＰ") == fold("青禾市ＧＤＰ") == "青禾市gdp"
    assert fold_quickly("臺灣的經濟成長") == fold("臺灣的經濟成長") == "台湾的经济成长"
    # Only a phrase that converts otherwise than its characters differs from fold.
    assert fold("反覆") == "反复" and fold_quickly("反覆") == "反覆"
