"""Which of a document's candidate chunks stands for it (qa.passage_choice)."""

from __future__ import annotations

from qa.passage_choice import MARGIN, chosen_chunk, earlier_text


def test_the_best_ranked_chunk_stays_unless_another_answers_clearly_better():
    assert chosen_chunk([1.0, 0.8], [0.6, 0.6]) == 0
    assert chosen_chunk([1.0, 0.8], [0.6, 0.6 + MARGIN / 2]) == 0
    assert chosen_chunk([1.0, 0.8], [0.6, 0.6 + MARGIN + 0.01]) == 1
    assert chosen_chunk([1.0, 0.8, 0.7], [0.5, 0.7, 0.9]) == 2
    assert chosen_chunk([1.0], [0.0]) == 0


def test_earlier_text_joins_the_chunks_before_in_document_order():
    ordinals, texts = [2, 0, 1], ["丙", "甲", "乙"]
    assert earlier_text(ordinals, texts, 2) == "甲\n乙"
    assert earlier_text(ordinals, texts, 0) == ""
