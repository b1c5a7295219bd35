"""The eval harness on a tiny SQuAD file whose answers are known."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from qa import cli
from qa.evaluation import (
    evaluate,
    metrics,
    paragraph_rank,
    paragraph_ranking,
    read_squad,
    sentence_holds_answer,
)
from tests.fakes import FakeEmbedder

PARAGRAPHS = {
    "宜宾白酒产业2021年营业收入突破1600亿元，约占全国白酒行业的27%。":
        ["宜宾白酒产业的营业收入是多少？"],
    "景德镇陶瓷电商发展迅速，陶溪川直播基地今年3月成交额达4.35亿元。":
        ["陶溪川直播基地的成交额是多少？"],
    "梧州市第十四次党代会提出要加快培育数字经济，推动产业数字化。":
        ["梧州哪次会议提出培育数字经济？", "梧州要推动什么数字化？"],
}


def squad_file(path, paragraphs):
    data = {"data": [{"title": "t", "paragraphs": [
        {"context": context, "qas": [{"id": str(i), "question": q, "answers": []}
                                     for i, q in enumerate(questions)]}
        for context, questions in paragraphs.items()]}]}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_metrics_from_known_ranks():
    result = metrics([1, 2, None, 11])
    assert result["recall@1"] == 0.25 and result["recall@5"] == 0.5 and result["recall@10"] == 0.5
    assert result["mrr@10"] == pytest.approx((1 + 0.5) / 4)
    assert result["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 4)
    assert paragraph_ranking(["a", "a", "b", "c", "b"], depth=2) == ["a", "b"]
    assert paragraph_rank(["a", "a", "b", "c", "b"], "c") == 3
    assert paragraph_rank(["a", "a", "b", "c", "b"], "c", depth=2) is None


def test_read_squad_makes_one_document_per_paragraph(tmp_path):
    evalset = read_squad([squad_file(tmp_path / "tiny.json", PARAGRAPHS)])
    assert len(evalset.documents) == 3 and len(evalset.questions) == 4
    assert evalset.questions[-1].paragraph_id == evalset.documents[-1].doc_id


def test_evaluate_finds_every_answer_paragraph_at_rank_1(tmp_path, make_config):
    files = [squad_file(tmp_path / "a.json", PARAGRAPHS),
             squad_file(tmp_path / "b.json", {"泸州酒博会3月举行。": ["酒博会在哪里举行？"]})]
    results = evaluate(files, make_config(), FakeEmbedder())
    assert {(r["file"], r["mode"]) for r in results} == {
        (f, m) for f in ("a.json", "b.json") for m in ("hybrid", "vector", "keyword")}
    for row in results:
        assert row["pool"] == 4
        if row["mode"] != "vector":
            assert row["recall@1"] == 1.0 and row["mrr@10"] == 1.0, row
        assert row["recall@10"] == 1.0 and row["latency_ms_p50"] >= 0


def test_qa_eval_prints_a_table_and_writes_json(tmp_path, make_config, monkeypatch):
    monkeypatch.setattr(cli, "load_embedder", lambda config: FakeEmbedder())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("model:\n  name: fake-embedder\n", encoding="utf-8")
    squad_file(tmp_path / "tiny.json", PARAGRAPHS)
    result = CliRunner().invoke(cli.main, ["eval", "tiny.json", "--mode", "keyword",
                                           "--json", "out.json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "| tiny.json | keyword | 4 | 3 |" in result.output
    rows = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["results"]
    assert set(rows[0]) >= {"file", "mode", "questions", "paragraphs", "recall@1", "recall@5",
                            "recall@10", "mrr@10", "ndcg@10", "sentence@1", "latency_ms_p50"}
    # The tiny file has no gold answers: sentence@1 is null and shown as a dash.
    assert rows[0]["sentence@1"] is None and "| – |" in result.output
    missing = CliRunner().invoke(cli.main, ["eval", "nope.json"])
    assert missing.exit_code != 0 and "no such file" in missing.output


def test_sentence_at_1_counts_marked_sentences_holding_a_gold_answer(tmp_path, make_config):
    def qa(question, *answers):
        return {"question": question, "answers": [{"text": a} for a in answers]}

    data = {"data": [{"title": "t", "paragraphs": [
        {"context": "白酒是宜宾的传统优势产业。2021年，宜宾白酒产业的营业收入突破1600亿元。"
                    "2022年重点项目共计22个。",
         "qas": [qa("2021年宜宾白酒产业的营业收入是多少？", "1600亿元", "1600亿"),
                 qa("2022年宜宾白酒重点项目共计多少个？", "22个")]},
         # The answer sits in the sentence before the one the question's words are in.
        {"context": "陶溪川直播基地今年3月成交额达4.35亿元。这一数字创下历史新高。",
         "qas": [qa("什么数字创下历史新高？", "4.35亿元"),
                 qa("陶溪川直播基地在哪里？")]},  # no gold answer: not counted
    ]}]}
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    results = evaluate([path], make_config(), FakeEmbedder(), modes=("keyword",))
    assert results[0]["recall@1"] == 1.0
    assert results[0]["sentence@1"] == pytest.approx(2 / 3, abs=1e-4)


def test_sentence_holds_answer_compares_folded_text():
    assert sentence_holds_answer("中華民國於1912年成立。", ("中华民国",))
    assert sentence_holds_answer("营收突破１６００亿元。", ("1600亿元",))
    assert not sentence_holds_answer("营收突破1600亿元。", ())


def titled_articles() -> dict:
    """Two one-paragraph articles; the question's words are only in the first title."""
    def article(title, context, questions):
        return {"title": title, "paragraphs": [
            {"context": context, "qas": [{"question": q, "answers": [{"text": a}]}
                                         for q, a in questions]}]}

    return {"data": [
        article("景德镇跨境电商综试区获批", "今年2月，该试验区获国务院正式批复，首批企业已入驻。",
                [("景德镇综试区什么时候获批？", "今年2月")]),
        article("南浦港口扩建", "今年5月，该港区获省政府正式批复，扩建工程随即开工。", []),
    ]}


def test_qa_eval_indexes_each_articles_title(tmp_path, make_config):
    """The answer paragraph names neither 景德镇 nor 综试区: only its article's title
    does, as a news report's headline does. Indexed with titles, as the product
    indexes an article, it comes first; the look-alike paragraph lacks the title."""
    data = titled_articles()
    path = tmp_path / "titled.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    evalset = read_squad([path])
    assert [d.title for d in evalset.documents] == ["景德镇跨境电商综试区获批", "南浦港口扩建"]
    (row,) = evaluate([path], make_config(), FakeEmbedder(), modes=("keyword",))
    assert row["recall@1"] == 1.0 and row["sentence@1"] == 1.0
    # The same file without titles: no question word is left in the right paragraph.
    for entry in data["data"]:
        del entry["title"]
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert read_squad([path]).documents[0].title is None
    (untitled,) = evaluate([path], make_config(), FakeEmbedder(), modes=("keyword",))
    assert untitled["recall@1"] < 1.0


class RecordingEmbedder(FakeEmbedder):
    """The fake embedder, keeping every passage text it was given."""

    def __init__(self):
        super().__init__()
        self.passages: list[str] = []

    def embed_passages(self, texts, progress=None):
        self.passages += list(texts)
        return super().embed_passages(texts, progress)


def test_title_for_keywords_only_is_found_by_keywords_but_not_embedded(tmp_path, make_config):
    """embed_title off, keyword_title on: the model never sees the title, the keyword
    index still finds the paragraph through it, exactly as with the title in both."""
    path = tmp_path / "titled.json"
    path.write_text(json.dumps(titled_articles(), ensure_ascii=False), encoding="utf-8")
    keywords_only = make_config(chunking={"embed_title": False, "keyword_title": True})
    embedder = RecordingEmbedder()
    (row,) = evaluate([path], keywords_only, embedder, modes=("keyword",))
    assert row["recall@1"] == 1.0
    assert sorted(embedder.passages) == sorted(
        p["context"] for a in titled_articles()["data"] for p in a["paragraphs"])
    both = RecordingEmbedder()
    (row_both,) = evaluate([path], make_config(), both, modes=("keyword",))
    assert row_both["recall@1"] == 1.0
    assert "景德镇跨境电商综试区获批\n今年2月，该试验区获国务院正式批复，首批企业已入驻。" \
        in both.passages
    # Neither: the keywords no longer hold the title, and the question words are gone.
    neither = make_config(chunking={"embed_title": False, "keyword_title": False})
    (row_neither,) = evaluate([path], neither, FakeEmbedder(), modes=("keyword",))
    assert row_neither["recall@1"] < 1.0
