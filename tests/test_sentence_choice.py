"""The answering sentence among a document's candidate chunks (qa.sentence_choice), on
real cases from the tuning half of CMRC dev where the choice before it marked a wrong
sentence (idf weights and retrieval scores as the index gave them)."""

from __future__ import annotations

import pytest

from qa import sentence_choice
from qa.sentence_choice import (
    FEATURES,
    WEIGHTS,
    ChunkCandidate,
    best_row,
    earlier_text,
    sentence_rows,
)
from qa.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer()


def marked(tokenizer, question, idf, chunks):
    rows = sentence_rows(question, idf, tokenizer, chunks)
    row = best_row(rows)
    return chunks[row.chunk].text[row.span[0]:row.span[1]]


ZHANG_YUANSU = ChunkCandidate(
    "张元素，字洁古，晚号洁古老人，金代易州（即今河北省易县）人，著名中医师，深通药理学，"
    "善医伤寒，善于化裁古方，以及善于创新。八岁试童子举，二十七岁试经义进士。"
    "因为犯了庙讳而落第，弃仕学医。张元素约与金代另一名医刘完素同时代。"
    "刘完素病伤寒，八日不愈，头痛脉紧，令他不知所措。张元素前去探望，刘完素看不起他，面壁不顾。"
    "张元素不但断准其病，且指出用药不当，致使刘完素信服。后按张元素意见用药，遂愈自此名声大振。",
    0, 1.0, vector=0.8877, keyword=27.84)


def test_the_word_that_tells_sentences_apart_outweighs_the_subject(tokenizer):
    # 张元素 is in most sentences and tells none apart; 落第 is in one. Before, a sentence
    # naming 张元素 (and the carried 元素) won.
    idf = {"元素": 5.25, "张元素": 7.45, "落第": 7.45}
    assert marked(tokenizer, "张元素为什么落第？", idf, [ZHANG_YUANSU]) == \
        "因为犯了庙讳而落第，弃仕学医。"


def test_the_next_chunk_answers_where_the_best_ranked_one_names_the_subject(tokenizer):
    chunks = [
        ChunkCandidate("黑鹦嘴鱼，又名颈斑鹦哥鱼，俗名鹦哥、青衫（雄）、蚝鱼（雌）、青蚝鱼，"
                       "为辐鳍鱼纲鲈形目隆头鱼亚目鹦哥鱼科的其中一种。", 0, 1.0, 0.9024, 23.9),
        ChunkCandidate("本鱼分布于印度太平洋区，包括红海、东非、马达加斯加、模里西斯等海域。",
                       1, 0.3605, 0.8761, 2.54),
    ]
    idf = {"黑": 5.11, "鹦嘴": 5.84, "鱼": 4.65, "主要": 2.31, "分布": 2.88, "地方": 3.57}
    assert marked(tokenizer, "黑鹦嘴鱼主要分布在什么地方？", idf, chunks) == \
        "本鱼分布于印度太平洋区，包括红海、东非、马达加斯加、模里西斯等海域。"


def test_a_short_sentence_with_the_asked_number_beats_the_lead(tokenizer):
    text = ("蟒鳗，又称血红拟蛇鱼，为辐鳍鱼纲鳗鲡目鳗鲡亚目异蝮鯙科的其中一个种。"
            "本鱼分布于中西大西洋，包括古巴、波多黎各、西印度群岛、苏利南等海域发现。"
            "水深12至55公尺。本鱼体长体高的20倍，头长的7.9至9倍。")
    idf = {"蟒": 7.45, "鳗": 6.35, "生活": 3.58, "水深": 3.97}
    assert marked(tokenizer, "蟒鳗生活的水深是多少？", idf,
                  [ChunkCandidate(text, 0, 1.0, 0.9267, 17.6)]) == "水深12至55公尺。"


def test_every_sentence_of_every_chunk_gets_every_feature(tokenizer):
    chunks = [ChunkCandidate("甲乙丙。丁戊己。", 0, 1.0, 0.9, 2.0),
              ChunkCandidate("庚辛。", 3, 0.5, 0.8, 1.0)]
    rows = sentence_rows("甲乙是什么？", {"甲乙": 2.0}, tokenizer, chunks)
    assert [(r.chunk, r.span) for r in rows] == [(0, (0, 4)), (0, (4, 8)), (1, (0, 3))]
    assert all(len(r.features) == len(FEATURES) == len(WEIGHTS) for r in rows)
    first = dict(zip(FEATURES, rows[0].features, strict=True))
    assert first["own"] == 1.0 and first["best chunk"] == 1.0 and first["lead"] == 1.0
    later = dict(zip(FEATURES, rows[2].features, strict=True))
    assert later["chunk cosine"] == pytest.approx(-0.1) and later["chunk keyword"] == 0.5
    assert later["lead"] == 0.0 and later["coverage"] > 0  # 甲乙 carried from chunk 0
    assert later["opening chunk"] == 0.0 and later["chunk score"] == 0.5
    assert first["opening chunk"] == 1.0 and first["chunk score"] == 1.0


def test_a_word_every_sentence_names_counts_for_nothing_in_distinctive():
    named = [{"张元素": 1.0}, {"张元素": 1.0, "落第": 1.0}, {"张元素": 1.0}]
    shares = sentence_choice._distinctive({"张元素": 7.0, "落第": 7.0}, named)
    assert shares == pytest.approx([0.0, 1.0, 0.0])


def test_earlier_text_joins_the_chunks_before_in_document_order():
    ordinals, texts = [2, 0, 1], ["丙", "甲", "乙"]
    assert earlier_text(ordinals, texts, 2) == "甲\n乙"
    assert earlier_text(ordinals, texts, 0) == ""


def test_the_slot_feature_marks_sentences_holding_the_words_beside_the_question_phrase(
        tokenizer):
    chunks = [ChunkCandidate("克什米尔马鹿是马鹿的亚种。其外形上最显著的特征是白色的尾巴。",
                             0, 1.0, 0.9, 2.0)]
    idf = {"克什米尔": 6.0, "马鹿": 5.0, "外形": 3.0, "特征": 3.0}
    rows = sentence_rows("克什米尔马鹿在外形上有什么特征？", idf, tokenizer, chunks)
    slot = FEATURES.index("slot")
    assert [row.features[slot] for row in rows] == [0.0, 1.0]


def test_a_definition_question_marks_the_sentence_worded_as_one(tokenizer):
    # CMRC tuning: before the definition feature the second sentence was marked.
    chunks = [ChunkCandidate("操场，又叫运动场。", 0, 1.0, 0.9, 10.0),
              ChunkCandidate("操场是指用以进行步操、阅兵、集会的场地。"
                             "有盖操场的规模较小，且不一定是椭圆形。", 1, 0.8, 0.89, 9.0)]
    idf = {"操场": 6.0, "定义": 4.0}
    rows = sentence_rows("操场的定义是什么？", idf, tokenizer, chunks)
    definition = FEATURES.index("definition")
    assert [row.features[definition] for row in rows] == [0.0, 1.0, 0.0]
    assert marked(tokenizer, "操场的定义是什么？", idf, chunks) == \
        "操场是指用以进行步操、阅兵、集会的场地。"
    without = WEIGHTS[:definition] + (0.0,) + WEIGHTS[definition + 1:]
    row = best_row(rows, without)
    assert chunks[row.chunk].text[row.span[0]:row.span[1]].startswith("有盖操场")
    # A question not asking for a definition gets no such feature.
    rows = sentence_rows("操场在哪里？", idf, tokenizer, chunks)
    assert all(row.features[definition] == 0.0 for row in rows)
