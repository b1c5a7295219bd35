"""Tokenisation, text folding and the FTS5 keyword index."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import jieba
import jieba.posseg

from qa.index import keywords
from qa.normalize import fold
from qa.tokenizer import Tokenizer


def test_user_dictionary_words_stay_whole():
    plain = Tokenizer().tokens("宜宾数字化产融协同平台")
    assert "产融协同" not in plain
    assert "产融协同" in Tokenizer(["产融协同"]).tokens("宜宾数字化产融协同平台")
    assert "陶溪川" in Tokenizer(["陶溪川"]).tokens("陶溪川抖音直播基地")


def test_tagging_shares_the_dictionary_tags_and_matches_jieba():
    tokenizer = Tokenizer(["产融协同", "五粮液"])
    reference_segmenter = jieba.Tokenizer()
    for word in tokenizer.user_words:
        reference_segmenter.add_word(word, freq=None)
        reference_segmenter.suggest_freq(word, tune=True)
    reference = jieba.posseg.POSTokenizer(reference_segmenter)
    for text in ("谁是五粮液的董事长曾从钦", "宜宾市位于四川省南部，推动产融协同发展",
                 "李白出生在碎叶城，后来到了长安。"):
        expected = [(pair.word, pair.flag) for pair in reference.lcut(text, HMM=True)]
        assert tokenizer.tagged_words(text) == expected
    assert tokenizer._tagger.word_tag_tab == jieba.posseg.dt.word_tag_tab


def test_tokens_do_not_import_the_tagger():
    # jieba.posseg reads the whole dictionary on import; only tagging needs it.
    code = ("import sys; from qa.tokenizer import Tokenizer; t = Tokenizer(); t.load(); "
            "t.tokens('宜宾白酒产业的营业收入'); print('jieba.posseg' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_cached_tokens_are_a_fresh_list_each_time():
    tokenizer = Tokenizer()
    first = tokenizer.tokens("宜宾白酒产业的营业收入")
    first += ["changed"]  # the retriever extends a question's tokens in place
    assert tokenizer.tokens("宜宾白酒产业的营业收入") == first[:-1]
    long_text = "宜宾白酒产业的营业收入。" * 200  # past the cache's length limit
    assert tokenizer.tokens(long_text) == tokenizer.tokens("宜宾白酒产业的营业收入。") * 200


def test_numbers_and_latin_words_stay_whole_and_punctuation_and_stop_words_go():
    tokens = Tokenizer().tokens("2021年营业收入1.76万亿，同比增长18.8%；JD.com与5G的应用是什么？")
    for whole in ("2021", "1.76", "18.8%", "jd.com", "5g"):
        assert whole in tokens
    assert not {"，", "；", "？", "的", "是", "什么"} & set(tokens)


def test_full_width_traditional_and_case_are_folded():
    assert fold("ＡＢＣ１２３") == "abc123"
    assert fold("臺灣經濟發展") == "台湾经济发展"
    assert Tokenizer().tokens("臺灣經濟") == Tokenizer().tokens("台湾经济")


def keyword_db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.executescript(keywords.SCHEMA)
    return db


def test_a_simplified_question_finds_a_traditional_paragraph_and_the_reverse():
    tokenizer = Tokenizer()
    db = keyword_db()
    keywords.add_keywords(db, [(1, tokenizer.tokens("臺灣的半導體產業發展迅速。")),
                               (2, tokenizer.tokens("景德镇陶瓷产业")),
                               (3, tokenizer.tokens("宜宾白酒产业营业收入"))])
    assert keywords.search_keywords(db, tokenizer.tokens("台湾半导体产业"), 3)[0][0] == 1
    assert keywords.search_keywords(db, tokenizer.tokens("景德鎮陶瓷"), 3)[0][0] == 2


def test_keyword_search_remove_and_idf():
    tokenizer = Tokenizer()
    db = keyword_db()
    texts = {1: "宜宾白酒产业", 2: "景德镇陶瓷产业", 3: "梧州数字经济", 4: "泸州白酒博览会"}
    keywords.add_keywords(db, ((i, tokenizer.tokens(t)) for i, t in texts.items()))
    hits = keywords.search_keywords(db, tokenizer.tokens("宜宾的白酒"), 10)
    assert hits[0][0] == 1 and {i for i, _ in hits} == {1, 4}
    assert all(score > 0 for _, score in hits)
    assert keywords.search_keywords(db, tokenizer.tokens("宜宾的白酒"), 10, among=[4]) == [hits[1]]
    tokens = ["宜宾", "产业", "天气"]
    idf = keywords.inverse_document_frequencies(
        len(texts), keywords.document_frequencies(db, tokens), tokens)
    assert idf["天气"] > idf["宜宾"] > idf["产业"] > 0
    keywords.remove_keywords(db, [1])
    assert [i for i, _ in keywords.search_keywords(db, tokenizer.tokens("宜宾"), 10)] == []
    assert keywords.search_keywords(db, [], 10) == []
    assert keywords.search_keywords(db, ['"bad'], 10) == []
