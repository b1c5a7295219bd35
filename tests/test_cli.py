"""The `qa` command through click's runner, with the fake embedder."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from qa import cli
from tests.fakes import FakeEmbedder

YIBIN = "2021年宜宾白酒产业的营业收入是多少？"


@pytest.fixture
def project(tmp_path, shipped_corpus, monkeypatch):
    """A folder with config.yaml and the shipped corpus; the model is the fake embedder."""
    (tmp_path / "config.yaml").write_text(
        "corpus_dir: corpus\nindex_dir: embeddings/index\nmodel:\n  name: fake-embedder\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(cli, "load_embedder", lambda config: FakeEmbedder())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli.main, list(args), input=stdin, catch_exceptions=False)


def test_index_then_ask_prints_ranked_cited_passages(project):
    indexed = run("index")
    assert indexed.exit_code == 0, indexed.output
    # 5 files; 001 holds four reports, one document each.
    assert "indexed 8 documents" in indexed.output and "passages/s" in indexed.output
    assert (project / "embeddings/index/manifest.json").is_file()

    answer = run("ask", YIBIN, "-k", "3")
    assert answer.exit_code == 0, answer.output
    assert "[1]" in answer.output and "[3]" in answer.output and "[4]" not in answer.output
    assert "第" in answer.output and "段" in answer.output and "【" in answer.output


def test_ask_json_follows_the_answer_schema(project):
    run("index")
    result = run("ask", YIBIN, "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["question"] == YIBIN and answer["took_ms"] >= 0
    assert [p["rank"] for p in answer["passages"]] == [1, 2, 3, 4, 5]
    corpus = {p.stem: p for p in (project / "corpus").iterdir()}
    for passage in answer["passages"]:
        citation = passage["citation"]
        assert set(citation) == {"doc_id", "title", "source", "date", "url", "section",
                                 "paragraph", "char_start", "char_end"}
        # A report split from a file has the file's id and "-2", "-3"…
        assert re.sub(r"-\d+$", "", citation["doc_id"]) in corpus
        assert citation["char_end"] - citation["char_start"] == len(passage["text"])
        start, end = passage["highlight"]["start"], passage["highlight"]["end"]
        assert 0 <= start < end <= len(passage["text"])
    scores = [p["score"] for p in answer["passages"]]
    assert scores == sorted(scores, reverse=True)


def test_ask_file_answers_every_line_in_order_with_one_model_load(project, monkeypatch):
    run("index")
    loads = []
    monkeypatch.setattr(cli, "load_embedder", lambda config: loads.append(1) or FakeEmbedder())
    questions = [YIBIN, "景德镇的陶瓷电商", "", "What is JD.com doing in Yibin?"]
    result = run("ask", "--json", "--file", "-", stdin="\n".join(questions) + "\n")
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.output.splitlines()]
    assert [a["question"] for a in answers] == [q for q in questions if q]
    assert len(loads) == 1


def test_ask_before_index_is_one_clear_line(project):
    result = run("ask", YIBIN)
    assert result.exit_code != 0
    assert "qa index" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question_is_rejected(project, question):
    run("index")
    result = run("ask", question)
    assert result.exit_code != 0 and "empty" in result.output


def test_unreadable_config_is_one_clear_line(project):
    (project / "broken.yaml").write_text("model: [\n", encoding="utf-8")
    result = run("ask", YIBIN, "--config", "broken.yaml")
    assert result.exit_code != 0 and "not valid YAML" in result.output
    assert "Traceback" not in result.output


def test_index_reports_skipped_files_and_keeps_going(project):
    (project / "corpus" / "broken.txt").write_bytes(b"\x00\x01\x02binary\xff")
    result = run("index")
    assert result.exit_code == 0, result.output
    assert "broken.txt" in result.output and "indexed 8 documents" in result.output


def test_an_index_from_another_model_is_refused_with_what_to_run(project, monkeypatch):
    run("index")
    (project / "other.yaml").write_text(
        "corpus_dir: corpus\nindex_dir: embeddings/index\nmodel:\n  name: other-model\n",
        encoding="utf-8",
    )
    result = run("ask", YIBIN, "--config", "other.yaml")
    assert result.exit_code != 0
    assert "other-model" in result.output and "qa index" in result.output


def test_a_failed_build_leaves_the_previous_index_in_place(project, monkeypatch):
    run("index")
    before = (project / "embeddings/index/manifest.json").read_text(encoding="utf-8")

    class Exploding(FakeEmbedder):
        def embed_passages(self, texts, progress=None):
            raise RuntimeError("interrupted")

    monkeypatch.setattr(cli, "load_embedder", lambda config: Exploding())
    # A new article, so that the rebuild has something the vector cache lacks.
    (project / "corpus" / "new.txt").write_text("新的一篇文章，讲景德镇陶瓷。", encoding="utf-8")
    with pytest.raises(RuntimeError):
        run("index")
    assert (project / "embeddings/index/manifest.json").read_text(encoding="utf-8") == before
    assert [p.name for p in (project / "embeddings").iterdir()] == ["index"]
    assert run("ask", YIBIN).exit_code == 0
