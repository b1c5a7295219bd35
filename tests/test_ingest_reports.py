"""The shipped corpus loads as before; a file of several reports is one document per report."""

from __future__ import annotations

import json
from pathlib import Path

from qa.ingest.document import Document
from qa.ingest.loader import load_corpus, load_document, load_file

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
MULTI = CORPUS / "001_217b2f632fd65200.txt"
# What the loader made of corpus/ before folders, formats and report splitting were added
# (written once by the previous loader; fields as in Document, path as the file name).
SNAPSHOT = json.loads((Path(__file__).parent / "fixtures" / "shipped_corpus.json").read_text())


def as_snapshot(document: Document) -> dict:
    return {
        "doc_id": document.doc_id,
        "path": Path(document.path).name,
        "blocks": [[block.text, block.is_heading] for block in document.blocks],
        "title": document.title,
        "date": document.date,
        "source": document.source,
        "url": document.url,
        "category": document.category,
        "tags": list(document.tags),
    }


def test_single_article_files_load_exactly_as_before() -> None:
    loaded = {d.doc_id: as_snapshot(d) for d in load_corpus(CORPUS).documents}
    for before in SNAPSHOT:
        if before["doc_id"] != MULTI.stem:
            assert loaded[before["doc_id"]] == before


def test_the_multi_report_file_splits_without_losing_or_adding_a_block() -> None:
    documents = load_file(MULTI, CORPUS)
    (before,) = [s for s in SNAPSHOT if s["doc_id"] == MULTI.stem]
    assert [block for d in documents for block in as_snapshot(d)["blocks"]] == before["blocks"]
    # As one document (load_document does not split), it is what it was.
    assert as_snapshot(load_document(MULTI)) == before


def test_each_report_has_its_own_headline_id_and_reporters() -> None:
    documents = load_file(MULTI, CORPUS)
    assert [(d.doc_id, d.title, d.author) for d in documents] == [
        ("001_217b2f632fd65200", "山东：创造并引领市场 以优质供给赋能消费升级", "齐旭"),
        ("001_217b2f632fd65200-2", "上海：顺应数字化 探索时尚消费品转型新路径", "齐旭"),
        ("001_217b2f632fd65200-3", "浙江：多措并举 推进消费品工业数字化转型", "徐恒"),
        ("001_217b2f632fd65200-4", "重庆：提升供给质量 推动消费品工业高质量发展", "徐恒"),
    ]
    # The editor's note introducing all four stays with the first report.
    assert documents[0].blocks[0].text == "编者按"
    zhejiang = documents[2]
    assert any("浙江消费品工业实现“三个首次突破”" in b.text for b in zhejiang.blocks)
    assert not any("山东" in b.text for b in zhejiang.blocks if b.is_heading)
    assert load_file(MULTI, CORPUS) == documents  # stable


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_headings_followed_by_prose_are_sections_of_one_article(tmp_path: Path) -> None:
    text = (
        "# 一篇文章\n\n本报记者 王明\n\n导语段落。\n\n## 第一部分\n\n第一部分的内容。\n\n"
        "## 第二部分\n\n第二部分的内容。\n"
    )
    (document,) = load_file(write(tmp_path, "one.md", text), tmp_path)
    assert document.title == "一篇文章" and document.author == "王明"
    assert [b.text for b in document.blocks if b.is_heading] == ["一篇文章", "第一部分", "第二部分"]


def test_reports_open_with_a_byline_prefix_or_a_date_line(tmp_path: Path) -> None:
    text = (
        "---\ntitle: 各地简讯\ndate: 2024-05-12\nsource: 示例日报\n---\n\n"
        "## 杭州开通第十二条地铁线路\n\n本报讯（记者 陈晨）5月11日，杭州地铁新线开通运营。\n\n"
        "全线共设车站二十座。\n\n"
        "## 宁波港集装箱吞吐量创新高\n\n2024年5月10日 来源：宁波晚报\n\n"
        "今年前四个月，宁波舟山港集装箱吞吐量同比增长百分之八。\n"
    )
    hangzhou, ningbo = load_file(write(tmp_path, "brief.md", text), tmp_path)
    assert (hangzhou.doc_id, hangzhou.title, hangzhou.author) == (
        "brief", "杭州开通第十二条地铁线路", "陈晨")
    first_paragraph = [b.text for b in hangzhou.blocks if not b.is_heading][0]
    assert first_paragraph == "5月11日，杭州地铁新线开通运营。"
    # The front matter fills what a report does not say itself.
    assert (hangzhou.date, hangzhou.source) == ("2024-05-12", "示例日报")
    assert (ningbo.doc_id, ningbo.title) == ("brief-2", "宁波港集装箱吞吐量创新高")
    assert (ningbo.date, ningbo.source) == ("2024-05-10", "宁波晚报")


def test_one_report_heading_is_not_a_split(tmp_path: Path) -> None:
    text = "## 唯一的报道\n\n本报记者 李华\n\n正文第一段。\n\n## 背景\n\n背景介绍。\n"
    (document,) = load_file(write(tmp_path, "single.md", text), tmp_path)
    assert document.title == "唯一的报道" and document.doc_id == "single"


def test_splitting_can_be_turned_off(tmp_path: Path) -> None:
    from dataclasses import replace

    from qa.config import IngestConfig

    settings = replace(IngestConfig(), split_reports=False)
    assert len(load_file(MULTI, CORPUS, settings)) == 1


def test_a_title_over_all_the_reports_is_not_the_first_reports_headline(tmp_path: Path) -> None:
    text = (
        "# 长三角城市简讯\n\n"
        "## 苏州工业园区新增外资项目\n\n记者 周洁\n\n一季度新增外资项目四十个。\n\n"
        "## 无锡物联网产业规模突破四千亿\n\n记者 吴桐\n\n产业规模同比增长百分之十。\n"
    )
    suzhou, wuxi = load_file(write(tmp_path, "briefs.md", text), tmp_path)
    assert suzhou.title == "苏州工业园区新增外资项目"
    assert wuxi.title == "无锡物联网产业规模突破四千亿"
    assert suzhou.blocks[0].text == "长三角城市简讯"  # kept, as the editor's note is
    assert (suzhou.author, wuxi.author) == ("周洁", "吴桐")
