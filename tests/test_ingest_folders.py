"""Corpus folders: recursion, hidden entries, the allow-list, the size limit, ids, config."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest

from qa.config import IngestConfig, load_config
from qa.errors import ConfigError
from qa.ingest.loader import LoadError, corpus_files, load_corpus, load_file

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ingest"


def relative(paths: list[Path], root: Path) -> list[str]:
    return [path.relative_to(root).as_posix() for path in paths]


def test_fixture_folder_files_in_relative_path_order() -> None:
    files, skipped = corpus_files(FIXTURES)
    assert relative(files, FIXTURES) == [
        "2024/03/hubei spring-planting.md",
        "anhui_damaged.txt",
        "chengyu_export.csv",
        "fujian_headline.txt",
        "guangdong_export.jsonl",
        "hangzhou_report.pdf",
        "jiangxi_gbk.txt",
        "ningbo_port.docx",
        "scanned_notice.pdf",
        "zhejiang_page.html",
    ]
    # Hidden files and folders (.draft_notes.txt, .trash/) are not even reported.
    assert [(Path(s.path).name, s.reason) for s in skipped] == [
        ("statistics.xlsx", "unsupported type .xlsx")
    ]


def test_load_corpus_reports_each_skipped_file_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="qa.ingest.loader"):
        result = load_corpus(FIXTURES)
    assert sorted((Path(s.path).name, s.reason.split(":")[0]) for s in result.skipped) == [
        ("scanned_notice.pdf", "PDF has no text layer (a scan?)"),
        ("statistics.xlsx", "unsupported type .xlsx"),
    ]
    skipping = [r.message for r in caplog.records if r.message.startswith("skipping")]
    assert len(skipping) == 2
    ids = [d.doc_id for d in result.documents]
    assert ids[0] == "2024-03-hubei_spring-planting"
    assert "zhejiang_page" in ids and "chengyu_export-cq-0510-02" in ids
    assert len(ids) == len(set(ids)) == 12
    assert not any("草稿" in d.text or "隐藏" in d.text for d in result.documents)


def test_ids_are_url_safe_and_stable() -> None:
    first = load_corpus(FIXTURES).documents
    again = load_corpus(FIXTURES).documents
    assert [d.doc_id for d in first] == [d.doc_id for d in again]
    for document in first:
        assert re.fullmatch(r"[\w.~-]+", document.doc_id), document.doc_id
        if document.doc_id.isascii():  # nothing to escape in a URL path segment
            assert quote(document.doc_id, safe="~") == document.doc_id


def test_subfolder_ids_come_from_the_relative_path(tmp_path: Path) -> None:
    nested = tmp_path / "2024" / "05 月"
    nested.mkdir(parents=True)
    (nested / "报道#1?.txt").write_text("正文。", encoding="utf-8")
    (tmp_path / "top.txt").write_text("顶层正文。", encoding="utf-8")
    ids = [d.doc_id for d in load_corpus(tmp_path).documents]
    assert ids == ["2024-05_月-报道_1", "top"]
    # Without the corpus root, a file is known by its stem, as before.
    assert load_file(nested / "报道#1?.txt")[0].doc_id == "报道#1?"


def test_colliding_ids_keep_the_first(tmp_path: Path) -> None:
    for folder, name in [("a", "b-c.txt"), ("a-b", "c.txt")]:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_text(f"{folder}正文。", encoding="utf-8")
    result = load_corpus(tmp_path)
    assert [d.doc_id for d in result.documents] == ["a-b-c"]
    assert "duplicate doc_id 'a-b-c'" in result.skipped[0].reason


def test_the_size_limit(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("很长的正文。" * 100, encoding="utf-8")
    (tmp_path / "small.txt").write_text("短。", encoding="utf-8")
    settings = replace(IngestConfig(), max_file_bytes=1000)
    files, skipped = corpus_files(tmp_path, settings)
    assert relative(files, tmp_path) == ["small.txt"]
    (too_big,) = skipped
    assert too_big.reason.startswith("file too large: 0.0 MB")
    assert "ingest.max_file_bytes" in too_big.reason
    with pytest.raises(LoadError, match="too large"):
        load_file(tmp_path / "big.txt", tmp_path, settings)


def test_the_extension_allow_list_is_configurable(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("正文。", encoding="utf-8")
    (tmp_path / "b.md").write_text("正文。", encoding="utf-8")
    (tmp_path / "README").write_text("说明。", encoding="utf-8")
    settings = replace(IngestConfig(), extensions=(".md",))
    files, skipped = corpus_files(tmp_path, settings)
    assert relative(files, tmp_path) == ["b.md"]
    assert sorted(s.reason for s in skipped) == [
        "unsupported type (no extension)", "unsupported type .txt"]


def test_a_missing_folder_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="cannot list corpus folder"):
        corpus_files(tmp_path / "missing")


def test_symlinked_folders_are_not_followed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.txt").write_text("正文。", encoding="utf-8")
    (tmp_path / "real" / "loop").symlink_to(tmp_path, target_is_directory=True)
    files, skipped = corpus_files(tmp_path)
    assert relative(files, tmp_path) == ["real/a.txt"] and skipped == []


# --- the ingest section of config.yaml ---------------------------------------------------


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_config_has_the_default_ingest_settings() -> None:
    config = load_config(Path(__file__).resolve().parent.parent / "config.yaml")
    assert config.ingest == IngestConfig()


def test_ingest_settings_are_read(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, (
        "ingest:\n  extensions: [.txt, .jsonl]\n  max_file_bytes: 1000\n"
        "  split_reports: false\n  export_fields: {content: 正文内容, id: 稿件编号}\n"
    )))
    assert config.ingest.extensions == (".txt", ".jsonl")
    assert (config.ingest.max_file_bytes, config.ingest.split_reports) == (1000, False)
    assert dict(config.ingest.export_fields) == {"content": "正文内容", "id": "稿件编号"}
    with pytest.raises(TypeError):
        config.ingest.export_fields["title"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ingest:\n  extension: [.txt]\n", "unknown key 'extension'"),
        ("ingest:\n  extensions: [txt]\n", "must look like '.txt'"),
        ("ingest:\n  max_file_bytes: 0\n", "max_file_bytes must be at least 1"),
        ("ingest:\n  export_fields: {body: text}\n", "unknown field 'body'"),
        ("ingest:\n  export_fields: [content]\n", "mapping of text to text"),
        ("ingest:\n  export_fields: {content: 3}\n", "mapping of text to text"),
    ],
)
def test_bad_ingest_settings_are_rejected(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(tmp_path, text))
