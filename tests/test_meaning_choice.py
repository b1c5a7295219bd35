"""A close call between the rank-1 document's best sentences, settled by the model
(qa.meaning_choice, through qa.passage_choice.stand_ins); here with a fake similarity
that records what it is asked. The real model is in tests/test_integration.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from qa import meaning_choice
from qa.highlight import Span
from qa.meaning_choice import best_row_by_meaning, close_contenders
from qa.passage_choice import stand_ins
from qa.sentence_choice import FEATURES, WEIGHTS, SentenceRow
from qa.tokenizer import Tokenizer


def row(score: float, chunk: int = 0, span: Span = (0, 1)) -> SentenceRow:
    """A row whose weighed features come to `score` (all on the first feature)."""
    return SentenceRow(chunk, span, (score / WEIGHTS[0],) + (0.0,) * (len(FEATURES) - 1))


class Similarity:
    """Cosines by sentence text; remembers every call."""

    def __init__(self, cosines: dict[str, float]):
        self.cosines = cosines
        self.asked: list[list[str]] = []

    def __call__(self, sentences: list[str]) -> list[float]:
        self.asked.append(list(sentences))
        return [self.cosines.get(s, 0.0) for s in sentences]


def test_only_the_best_few_of_a_close_call_are_contenders():
    rows = [row(5.0), row(9.0), row(8.5), row(1.0), row(8.9)]
    assert close_contenders(rows, 3, margin=1.0) == [1, 4, 2]
    assert close_contenders(rows, 2, margin=0.05) == []
    assert close_contenders(rows, 1, margin=1.0) == []
    assert close_contenders(rows[:1], 3, margin=1.0) == []


def test_the_sentence_closest_in_meaning_wins_a_close_call():
    rows = [row(9.0), row(8.8), row(8.7), row(2.0)]
    sentences = ["名字", "栖息在礁区", "体长", "无关"]
    similarity = Similarity({"名字": 0.80, "栖息在礁区": 0.86, "体长": 0.81, "无关": 0.99})
    best = best_row_by_meaning(rows, sentences, similarity, 3, margin=1.0, weight=20.0)
    assert best is rows[1]
    # Only the three contenders went to the model, best first.
    assert similarity.asked == [["名字", "栖息在礁区", "体长"]]


def test_a_clear_lead_never_asks_the_model():
    rows = [row(9.0), row(3.0)]
    similarity = Similarity({})
    assert best_row_by_meaning(rows, ["a", "b"], similarity, 3, margin=1.0) is None
    assert similarity.asked == []


CHUNKS = [
    "蓝带鱼是一种海水鱼，分布于西太平洋。蓝带鱼体长可达三十公分。",
    "栖息在礁区，夜间外出觅食小鱼和甲壳类。",
]


def found_for(doc: str, texts: list[str], title: str | None = None
              ) -> list[tuple[SimpleNamespace, SimpleNamespace]]:
    return [(SimpleNamespace(doc_id=doc, ordinal=n, text=t, title=title),
             SimpleNamespace(score=1.0 - n / 10, vector=0.85, keyword=10.0 - n))
            for n, t in enumerate(texts)]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer()


def test_stand_ins_ask_the_model_for_the_first_document_only(tokenizer, monkeypatch):
    monkeypatch.setattr(meaning_choice, "MARGIN", float("inf"))
    found = found_for("a", CHUNKS, "蓝带鱼") + found_for("b", CHUNKS)
    similarity = Similarity({"蓝带鱼\n栖息在礁区，夜间外出觅食小鱼和甲壳类。": 1.0})
    idf = {"蓝带": 6.0, "鱼": 3.0, "生活": 2.0, "习性": 6.0}
    order, scored = stand_ins("蓝带鱼的生活习性是怎样的？", idf, tokenizer, found, ["a", "b"],
                              similarity, meaning_sentences=3)
    # Each sentence is embedded after its document's title, as chunks are.
    assert len(similarity.asked) == 1 and len(similarity.asked[0]) == 3
    assert all(s.startswith("蓝带鱼\n") for s in similarity.asked[0])
    # The answering sentence, in the next chunk, now stands for document a.
    chosen = found[order[0]][0]
    start, end = scored[order[0]][0]
    assert chosen.text[start:end] == "栖息在礁区，夜间外出觅食小鱼和甲壳类。"


def test_a_sentence_chosen_by_meaning_stays_marked_when_it_shares_no_word(
        tokenizer, monkeypatch):
    # The chosen chunk shares no word with the question: its score must still be above
    # 0, or the retriever would ask qa.highlight's fallback for another sentence.
    monkeypatch.setattr(meaning_choice, "MARGIN", float("inf"))
    # (The answer opens the document here: words named in earlier chunks would carry in.)
    texts = ["夜间外出觅食甲壳类。", CHUNKS[0]]
    found = found_for("a", texts)
    similarity = Similarity({"夜间外出觅食甲壳类。": 1.0})
    idf = {"蓝带": 6.0, "鱼": 3.0, "生活": 2.0, "习性": 6.0}
    order, scored = stand_ins("蓝带鱼的生活习性是怎样的？", idf, tokenizer, found, ["a"],
                              similarity, meaning_sentences=3)
    assert found[order[0]][0].text == texts[0]
    assert scored[order[0]] == ((0, len(texts[0])), 1.0)


def test_stand_ins_without_meaning_sentences_never_ask(tokenizer, monkeypatch):
    monkeypatch.setattr(meaning_choice, "MARGIN", float("inf"))
    similarity = Similarity({})
    idf = {"蓝带": 6.0, "鱼": 3.0, "生活": 2.0, "习性": 6.0}
    stand_ins("蓝带鱼的生活习性是怎样的？", idf, tokenizer, found_for("a", CHUNKS), ["a"],
              similarity, meaning_sentences=0)
    stand_ins("What does it eat?", idf, tokenizer, found_for("a", CHUNKS), ["a"],
              similarity, meaning_sentences=3)
    assert similarity.asked == []


def test_meaning_sentences_is_checked(make_config):
    from qa.errors import ConfigError

    assert make_config().retrieval.meaning_sentences == 4
    with pytest.raises(ConfigError, match="meaning_sentences"):
        make_config(retrieval={"meaning_sentences": -1})


@pytest.mark.parametrize("meaning_sentences", [0, 4])
def test_the_retriever_asks_the_model_only_when_the_setting_says(
        tmp_path, make_config, monkeypatch, meaning_sentences):
    from qa.index.saved_index import build_index, open_index
    from qa.retriever import Retriever
    from tests.fakes import FakeEmbedder

    monkeypatch.setattr(meaning_choice, "MARGIN", float("inf"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "fish.txt").write_text("".join(CHUNKS), encoding="utf-8")
    config = make_config(retrieval={"meaning_sentences": meaning_sentences})
    embedder = FakeEmbedder()
    build_index(config, embedder, corpus, config.index_dir)
    retriever = Retriever(config, open_index(config), embedder)
    try:
        answer = retriever.ask("蓝带鱼的生活习性是怎样的？", top_k=1)
    finally:
        retriever.engine.close()
    assert answer.passages
    # The sentences compared with the question are kept by qa.sentence_vectors.
    assert (len(retriever.sentence_vectors) > 0) == bool(meaning_sentences)
