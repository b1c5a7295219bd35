"""Which of a document's candidate chunks stands for it (qa.passage_choice)."""

from __future__ import annotations

from qa.sentence_choice import earlier_text


def test_earlier_text_joins_the_chunks_before_in_document_order():
    ordinals, texts = [2, 0, 1], ["丙", "甲", "乙"]
    assert earlier_text(ordinals, texts, 2) == "甲\n乙"
    assert earlier_text(ordinals, texts, 0) == ""
