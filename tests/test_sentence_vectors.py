"""Sentence vectors for the model's choice of the answering sentence: each embedded
alone, kept by text, bounded."""

from __future__ import annotations

import numpy as np

from qa.sentence_vectors import QuestionVectors, SentenceVectors
from tests.fakes import FakeEmbedder

SENTENCES = ["白酒是宜宾的传统优势产业。", "燃面是当地的传统小吃。", "宜宾是四川南部的城市。",
             "陶溪川直播基地今年3月成交额达4.35亿元。", "梧州提出加快培育数字经济。"]


class CountingEmbedder(FakeEmbedder):
    """Records how many texts each embed_passages call held."""

    def __init__(self):
        super().__init__()
        self.calls: list[int] = []

    def embed_passages(self, texts, progress=None):
        self.calls.append(len(texts))
        return super().embed_passages(texts, progress)


def test_each_sentence_is_embedded_alone_and_in_order():
    embedder = CountingEmbedder()
    vectors = SentenceVectors(embedder).vectors(SENTENCES[:3])
    assert embedder.calls == [1, 1, 1]
    expected = np.vstack([FakeEmbedder().embed_passages([s]) for s in SENTENCES[:3]])
    assert np.array_equal(vectors, expected)


def test_a_kept_sentence_is_not_embedded_again():
    embedder = CountingEmbedder()
    kept = SentenceVectors(embedder)
    first = kept.vectors(SENTENCES[:2])
    again = kept.vectors([SENTENCES[1], SENTENCES[2], SENTENCES[0], SENTENCES[2]])
    assert embedder.calls == [1, 1, 1]  # only the new sentence, once though asked twice
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[2], first[0])
    assert np.array_equal(again[1], again[3])


def test_at_most_capacity_sentences_are_kept_the_least_recently_used_dropped():
    embedder = CountingEmbedder()
    kept = SentenceVectors(embedder, capacity=3)
    kept.vectors(SENTENCES[:3])
    kept.vectors([SENTENCES[0]])  # used again: now the most recent
    kept.vectors(SENTENCES[3:5])  # drops 1 and 2, the least recently used
    assert len(kept) == 3
    embedder.calls.clear()
    kept.vectors([SENTENCES[0], SENTENCES[3], SENTENCES[4]])
    assert embedder.calls == []
    kept.vectors([SENTENCES[1]])
    assert embedder.calls == [1] and len(kept) == 3


def test_a_passage_rewritten_meets_no_stale_vector():
    """Kept by text, not by chunk id: a new text is a new key."""
    kept = SentenceVectors(FakeEmbedder())
    old = kept.vectors(["宜宾白酒产业的营业收入突破1600亿元。"])[0]
    new = kept.vectors(["宜宾白酒产业的营业收入突破1700亿元。"])[0]
    assert not np.array_equal(old, new)
    assert np.array_equal(new, FakeEmbedder().embed_passages(
        ["宜宾白酒产业的营业收入突破1700亿元。"])[0])


def test_nothing_asked_gives_an_empty_matrix_and_capacity_zero_keeps_nothing():
    assert SentenceVectors(FakeEmbedder()).vectors([]).shape == (0, 64)
    kept = SentenceVectors(FakeEmbedder(), capacity=0)
    kept.vectors(SENTENCES)
    assert len(kept) == 0


def test_the_retriever_chooses_sentences_with_the_kept_vectors(tmp_path, make_config):
    """A passage sharing no word with the question: its sentences go through the
    retriever's SentenceVectors, and a second asking embeds nothing."""
    from qa.index.saved_index import build_index, open_index
    from qa.retriever import Retriever

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("宜宾是四川南部的城市。燃面是当地的传统小吃。", encoding="utf-8")
    config = make_config()
    embedder = FakeEmbedder()
    build_index(config, embedder, corpus, config.index_dir)
    retriever = Retriever(config, open_index(config), embedder)
    try:
        first = retriever.ask("How big is it?", top_k=1)
        assert len(retriever.sentence_vectors) == 2
        embedded = embedder.passages_embedded
        second = retriever.ask("How big is it?", top_k=1)
        assert embedder.passages_embedded == embedded
        assert first.passages[0].highlight == second.passages[0].highlight
    finally:
        retriever.background.close()
        retriever.engine.close()


class CountingQueries(FakeEmbedder):
    """Records the texts of each embed_queries call."""

    def __init__(self):
        super().__init__()
        self.asked: list[list[str]] = []

    def embed_queries(self, texts):
        self.asked.append(list(texts))
        return super().embed_queries(texts)


def test_questions_are_embedded_alone_as_queries_and_kept():
    embedder = CountingQueries()  # counts embed_queries calls: passages are not asked
    kept = QuestionVectors(embedder, capacity=2)
    first = kept.vectors(["宜宾白酒产业的营业收入是多少？"])
    assert np.array_equal(first, FakeEmbedder().embed_queries(["宜宾白酒产业的营业收入是多少？"]))
    again = kept.vectors(["宜宾白酒产业的营业收入是多少？"])
    assert embedder.asked == [["宜宾白酒产业的营业收入是多少？"]]
    assert np.array_equal(again, first)
    kept.vectors(["景德镇陶瓷产业如何数字化？", "梧州数字经济"])
    assert len(kept) == 2 and len(embedder.asked) == 3


def test_the_retriever_embeds_a_question_asked_again_once(tmp_path, make_config):
    from qa.index.saved_index import build_index, open_index
    from qa.retriever import Retriever

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("宜宾白酒产业的营业收入突破1600亿元。", encoding="utf-8")
    config = make_config()
    build_index(config, FakeEmbedder(), corpus, config.index_dir)
    embedder = CountingQueries()
    retriever = Retriever(config, open_index(config), embedder)
    try:
        embedder.asked.clear()
        first = retriever.ask("宜宾白酒产业的营业收入", top_k=1).to_dict()
        second = retriever.ask("宜宾白酒产业的营业收入", top_k=1).to_dict()
        retriever.ask("What did Yibin earn?", top_k=1)
        assert len(embedder.asked) == 2  # the first question once, then the second
        first.pop("took_ms")
        second.pop("took_ms")
        assert first == second
    finally:
        retriever.background.close()
        retriever.engine.close()
