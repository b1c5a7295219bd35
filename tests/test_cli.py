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
    assert "synced: 8 added, 0 replaced, 0 removed, 0 unchanged" in indexed.output
    assert "read: 8 .txt (documents by file type)" in indexed.output
    assert "passages/s" in indexed.output
    assert (live_store(project) / "manifest.json").is_file()

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
                                 "paragraph", "paragraph_start", "paragraph_end",
                                 "char_start", "char_end"}
        assert citation["paragraph_start"] == citation["paragraph"]
        assert citation["paragraph_end"] >= citation["paragraph_start"]
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
    assert "broken.txt" in result.output and "8 added" in result.output
    assert result.output.count("broken.txt") == 1


def test_an_index_from_another_model_is_refused_with_what_to_run(project, monkeypatch):
    run("index")
    (project / "other.yaml").write_text(
        "corpus_dir: corpus\nindex_dir: embeddings/index\nmodel:\n  name: other-model\n",
        encoding="utf-8",
    )
    result = run("ask", YIBIN, "--config", "other.yaml")
    assert result.exit_code != 0
    assert "other-model" in result.output and "qa index --rebuild" in result.output


def live_store(project):
    index = project / "embeddings/index"
    return index / (index / "CURRENT").read_text(encoding="utf-8").strip()


class Exploding(FakeEmbedder):
    def embed_passages(self, texts, progress=None):
        raise RuntimeError("interrupted")


def test_a_failed_rebuild_leaves_the_previous_index_in_place(project, monkeypatch):
    run("index")
    before = live_store(project)
    monkeypatch.setattr(cli, "load_embedder", lambda config: Exploding())
    # A new article, so that the rebuild has something the vector cache lacks.
    (project / "corpus" / "new.txt").write_text("新的一篇文章，讲景德镇陶瓷。", encoding="utf-8")
    with pytest.raises(RuntimeError):
        run("index", "--rebuild")
    assert live_store(project) == before
    assert sorted(p.name for p in (project / "embeddings/index").iterdir()) == [
        "CURRENT", before.name, "writer.lock"]
    assert run("ask", YIBIN).exit_code == 0
    assert run("check").exit_code == 0


def test_a_failed_sync_keeps_what_it_committed_and_the_next_run_finishes(project,
                                                                        monkeypatch):
    run("index")
    monkeypatch.setattr(cli, "load_embedder", lambda config: Exploding())
    (project / "corpus" / "new.txt").write_text("新的一篇文章，讲景德镇陶瓷。", encoding="utf-8")
    with pytest.raises(RuntimeError):
        run("index")
    assert run("check").exit_code == 0
    monkeypatch.setattr(cli, "load_embedder", lambda config: FakeEmbedder())
    result = run("index")
    assert "1 added, 0 replaced, 0 removed, 8 unchanged" in result.output, result.output


def test_sync_adds_replaces_and_removes_files_in_subfolders_too(project):
    run("index")
    corpus = project / "corpus"
    (corpus / "000_3fe2b75bc59c04cf.txt").unlink()
    changed = corpus / "004_115f34327fef69f1.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "\n\n新增的一段：景德镇陶瓷出口增长。",
                       encoding="utf-8")
    result = run("index")
    assert "0 added, 1 replaced, 1 removed, 6 unchanged" in result.output, result.output
    again = run("index")
    assert "0 added, 0 replaced, 0 removed, 7 unchanged" in again.output
    assert "nothing new to embed" in again.output
    assert run("check").exit_code == 0


def test_touching_a_file_without_changing_it_embeds_nothing(project):
    run("index")
    path = project / "corpus" / "003_f6f549922cc68d70.txt"
    path.write_bytes(path.read_bytes())
    result = run("index")
    assert "0 added, 0 replaced, 0 removed, 8 unchanged" in result.output
    assert "nothing new to embed" in result.output


def test_an_empty_corpus_folder_does_not_wipe_the_index(project):
    run("index")
    for path in (project / "corpus").iterdir():
        path.unlink()
    result = run("index")
    assert result.exit_code != 0 and "nothing was removed" in result.output
    assert run("ask", YIBIN).exit_code == 0


def test_add_and_remove_single_documents(project, tmp_path_factory):
    run("index")
    outside = tmp_path_factory.mktemp("elsewhere") / "jdz-note.txt"
    outside.write_text("景德镇陶溪川文创街区\n\n陶溪川文创街区去年接待游客超过一千万人次。",
                       encoding="utf-8")
    added = run("add", str(outside))
    assert added.exit_code == 0 and "1 added" in added.output, added.output
    asked = json.loads(run("ask", "陶溪川接待了多少游客", "--json", "-k", "1").output)
    assert asked["passages"][0]["citation"]["doc_id"] == "jdz-note"
    # A later sync of the corpus folder leaves a document added from elsewhere alone.
    assert "0 removed" in run("index").output

    removed = run("remove", "jdz-note", "no-such-doc")
    assert removed.exit_code == 1
    assert "removed jdz-note" in removed.output and "no document 'no-such-doc'" in removed.output
    asked = json.loads(run("ask", "陶溪川接待了多少游客", "--json").output)
    assert all(p["citation"]["doc_id"] != "jdz-note" for p in asked["passages"])
    assert run("check").exit_code == 0


def test_removing_a_corpus_document_says_the_next_sync_brings_it_back(project):
    run("index")
    result = run("remove", "003_f6f549922cc68d70")
    assert result.exit_code == 0 and "still in the corpus folder" in result.output
    assert "1 added" in run("index").output


def test_an_old_format_index_is_converted_by_qa_index(project):
    index = project / "embeddings/index"
    index.mkdir(parents=True)
    (index / "manifest.json").write_text('{"format": 1}', encoding="utf-8")
    (index / "chunks.sqlite").write_bytes(b"")
    (project / "embeddings" / ".index.building-abc").mkdir()
    asked = run("ask", YIBIN)
    assert asked.exit_code != 0 and "old single-folder format" in asked.output
    assert "8 added" in run("index").output
    assert not (index / "manifest.json").exists()
    assert not (project / "embeddings" / ".index.building-abc").exists()
    assert run("ask", YIBIN).exit_code == 0


def test_index_of_a_mixed_folder_reports_each_kind_and_each_skipped_file_once(project):
    import shutil
    from pathlib import Path

    fixtures = Path(__file__).resolve().parent / "fixtures" / "ingest"
    corpus = project / "corpus"
    for path in fixtures.iterdir():
        if path.is_file() and not path.name.startswith("."):
            shutil.copy(path, corpus / path.name)
    result = run("index")
    assert result.exit_code == 0, result.output
    read = next(line for line in result.output.splitlines() if line.startswith("read: "))
    for kind in (".csv", ".docx", ".html", ".jsonl", ".pdf", ".txt"):
        assert kind in read
    for skipped in ("statistics.xlsx", "scanned_notice.pdf"):
        assert result.output.count(f"{skipped}:") == 1, result.output
    assert "unsupported type .xlsx" in result.output


def test_eval_takes_the_model_folder_from_qa_model_cache(tmp_path, monkeypatch):
    folders = []
    monkeypatch.setattr(cli, "load_embedder",
                        lambda config: folders.append(config.model.cache_dir) or FakeEmbedder())
    monkeypatch.setenv("QA_MODEL_CACHE", str(tmp_path / "models"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("model:\n  name: fake-embedder\n", encoding="utf-8")
    (tmp_path / "tiny.json").write_text(json.dumps({"data": [{"title": "t", "paragraphs": [
        {"context": "宜宾白酒产业的营业收入突破1600亿元。",
         "qas": [{"id": "1", "question": "宜宾白酒产业的营业收入是多少？",
                  "answers": [{"text": "1600亿元", "answer_start": 13}]}]}]}]},
        ensure_ascii=False), encoding="utf-8")
    result = run("eval", "tiny.json", "--mode", "keyword")
    assert result.exit_code == 0, result.output
    assert folders == [(tmp_path / "models").resolve()]
    # The embedding cache lives there too.
    assert (tmp_path / "models" / "embedding-cache.sqlite").is_file()
