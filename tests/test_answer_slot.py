"""The content next to a question's question phrase (qa.answer_slot), on folded text."""

from __future__ import annotations

import pytest

from qa.answer_slot import slot_neighbours, slot_share
from qa.normalize import fold


@pytest.mark.parametrize("question, neighbours", [
    # Fillers next to the phrase (是, 有, 的) are skipped.
    ("蟒鳗生活的水深是多少？", ("水深",)),
    ("克什米尔马鹿在外形上有什么特征？", ("形上", "特征")),
    ("谁提出了智慧酿造？", ("提出",)),
    ("邵伯温曾写过什么著作？", ("写过", "著作")),
    # Traditional characters are folded first by the caller.
    ("中華民國於哪一年成立？", ("民国", "成立")),
    # No question phrase, or too little content on a side.
    ("酒博会的特色", ()),
    ("是谁？", ()),
])
def test_slot_neighbours(question, neighbours):
    assert slot_neighbours(fold(question)) == neighbours


def test_slot_share_counts_the_neighbours_the_sentence_holds():
    neighbours = slot_neighbours(fold("克什米尔马鹿在外形上有什么特征？"))
    assert slot_share(neighbours, "其外形上最显著的特征是白色的尾巴。") == 1.0
    assert slot_share(neighbours, "最显著的特征是白色的尾巴。") == 0.5
    assert slot_share(neighbours, "克什米尔马鹿分布在印度。") == 0.0
    assert slot_share((), "任何句子") == 0.0
