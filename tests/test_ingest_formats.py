"""Each supported format: the metadata it yields, its paragraphs and what is dropped.

The fixtures in tests/fixtures/ingest/ are invented news; the binary ones were made by
scripts/make_ingest_fixtures.py.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from qa.config import IngestConfig
from qa.ingest.document import Document
from qa.ingest.loader import LoadError, load_document, load_file

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ingest"


def paragraphs(document: Document) -> list[str]:
    return [block.text for block in document.blocks if not block.is_heading]


def headings(document: Document) -> list[str]:
    return [block.text for block in document.blocks if block.is_heading]


def everything(document: Document) -> str:
    return "\n".join(block.text for block in document.blocks)


# --- saved web page ---------------------------------------------------------------------


def test_web_page_main_content_and_metadata() -> None:
    (page,) = load_file(FIXTURES / "zhejiang_page.html", FIXTURES)
    assert page.doc_id == "zhejiang_page"
    assert page.title == "浙江推进县域商业体系建设 农村快递网点覆盖率达百分之九十八"
    assert page.date == "2024-05-10"  # <meta name="pubdate"> and the date line agree
    assert page.source == "浙江日报"  # the "来源：" line names the paper, not the site
    assert page.author == "林晓"
    assert page.url == "https://news.example.cn/zj/2024/05/10/county-commerce.html"
    assert headings(page) == [page.title, "乡镇商贸中心改造提升", "农产品上行渠道拓宽"]
    assert len(paragraphs(page)) == 6
    assert paragraphs(page)[0].startswith("记者从省商务厅获悉")
    assert paragraphs(page)[-1].endswith("共建共享物流设施。")
    text = everything(page)
    # Navigation, breadcrumb, related links, footer and the date/source line.
    dropped_lines = ["首页", "正文", "相关新闻", "夜间经济", "版权所有", "ICP", "联系我们"]
    dropped_lines.append("来源：")
    for dropped in dropped_lines:
        assert dropped not in text, dropped


def test_web_page_without_a_source_line_cites_the_site(tmp_path: Path) -> None:
    html = (FIXTURES / "zhejiang_page.html").read_text(encoding="utf-8")
    html = html.replace('<div class="info">2024-05-10 来源：浙江日报</div>', "")
    path = tmp_path / "page.html"
    path.write_text(html, encoding="utf-8")
    (page,) = load_file(path, tmp_path)
    assert (page.source, page.date) == ("浙江新闻网", "2024-05-10")


def test_an_html_fragment_is_still_read_as_a_post_body(tmp_path: Path) -> None:
    path = tmp_path / "fragment.html"
    path.write_text("<h2>标题</h2><p>第一段。</p><p>来源：人民网</p>", encoding="utf-8")
    (document,) = load_file(path, tmp_path)
    assert (document.title, document.source) == ("标题", "人民网")
    assert paragraphs(document) == ["第一段。"]


# --- PDF --------------------------------------------------------------------------------


def test_pdf_text_layer_paragraphs_and_metadata() -> None:
    (report,) = load_file(FIXTURES / "hangzhou_report.pdf", FIXTURES)
    assert report.title == "杭州一季度工业经济稳中有进"  # the printed headline
    assert (report.date, report.source, report.author) == ("2024-05-10", "杭州日报", "周航")
    body = paragraphs(report)
    assert len(body) == 4
    # Lines wrapped inside a paragraph, and the paragraph cut by the page break, are joined.
    assert body[0] == (
        "杭州市统计局近日发布数据，一季度全市规模以上工业增加值同比增长百分之七点二，"
        "其中数字经济核心产业制造业增加值增长百分之十一点五，继续发挥引领作用。"
    )
    assert body[3].startswith("消费市场同样保持回暖态势") and body[3].endswith("百分之八点三。")
    text = everything(report)
    assert "- 1 -" not in text and "记者" not in text and "\x00" not in text
    assert "经济新闻" not in text  # the running header of every page


def test_a_scanned_pdf_is_skipped_with_its_reason() -> None:
    with pytest.raises(LoadError, match="no text layer"):
        load_file(FIXTURES / "scanned_notice.pdf", FIXTURES)


def test_a_broken_pdf_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\nnot really a pdf")
    with pytest.raises(LoadError):
        load_file(path, tmp_path)


# --- Word -------------------------------------------------------------------------------


def test_docx_headings_are_sections() -> None:
    (port,) = load_file(FIXTURES / "ningbo_port.docx", FIXTURES)
    assert port.title == "宁波舟山港一季度货物吞吐量保持增长"
    assert headings(port) == [port.title, "航线网络继续加密", "海铁联运量创同期新高"]
    # The byline wins over the file's author property (宁波市港航管理中心).
    assert (port.date, port.source, port.author) == ("2024-04-20", "宁波晚报", "郑佳")
    body = paragraphs(port)
    assert body[0].startswith("宁波舟山港一季度完成货物吞吐量")
    assert "目前港口航线总数达到三百零五条。" in body  # a list item
    assert body[-1] == "集装箱吞吐量 百分之九点一"  # a table row
    assert "2024年4月20日" not in everything(port) and "记者" not in everything(port)


def test_a_file_that_is_not_a_docx_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "fake.docx"
    path.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(LoadError, match="docx"):
        load_file(path, tmp_path)


# --- news exports -----------------------------------------------------------------------


def test_jsonl_export_one_document_per_record(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        documents = load_file(FIXTURES / "guangdong_export.jsonl", FIXTURES)
    nansha, shenzhen, foshan = documents  # the record without text and the bad line skipped
    assert nansha.doc_id == "guangdong_export-gd-20240508-001"  # its id field
    assert (nansha.title, nansha.date, nansha.source, nansha.author) == (
        "广州南沙港区四期工程全面投产", "2024-05-08", "南方日报", "黄磊")
    assert (nansha.category, nansha.tags) == ("经济", ("港口", "自动化"))
    assert nansha.url == "https://news.example.cn/gd/2024/05/08/nansha.html"
    assert paragraphs(nansha)[0] == "5月8日，广州港南沙港区四期自动化码头全面投产。"
    assert len(paragraphs(nansha)) == 3  # one line, one paragraph
    assert shenzhen.date == "2024-05-09"  # from "2024年5月9日"
    # Without an id field: a hash of the URL, or of title and date; never the position.
    assert shenzhen.doc_id.startswith("guangdong_export-") and len(shenzhen.doc_id) == 29
    assert foshan.doc_id != shenzhen.doc_id and foshan.url is None
    messages = " ".join(record.message for record in caplog.records)
    assert "line 4: record skipped: no text" in messages and "line 5: not JSON" in messages


def test_export_ids_do_not_depend_on_record_order(tmp_path: Path) -> None:
    lines = (FIXTURES / "guangdong_export.jsonl").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "guangdong_export.jsonl"
    path.write_text("\n".join(reversed(lines[:3])) + "\n", encoding="utf-8")
    reordered = {d.title: d.doc_id for d in load_file(path, tmp_path)}
    original = {d.title: d.doc_id for d in load_file(FIXTURES / "guangdong_export.jsonl")}
    assert reordered == original


def test_csv_export_with_chinese_field_names() -> None:
    rail, airport = load_file(FIXTURES / "chengyu_export.csv", FIXTURES)
    assert (rail.doc_id, rail.title, rail.date, rail.source, rail.category) == (
        "chengyu_export-cq-0510-01", "重庆中欧班列开行数量创新高", "2024-05-10", "重庆日报", "开放")
    assert rail.url == "https://news.example.cn/cq/2024/05/10/rail.html"
    assert paragraphs(airport) == [
        "成都天府国际机场近日新开通至布达佩斯的定期航线。",
        "至此，该机场国际及地区客运航线恢复至四十条。",
    ]


def test_export_field_names_come_from_the_config(tmp_path: Path) -> None:
    record = {"article_no": 17, "headline": "标题", "body_text": "正文一段。", "pub_time": 20240510}
    path = tmp_path / "feed.json"
    path.write_text(json.dumps({"items": [record]}, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(LoadError, match="export_fields"):
        load_file(path, tmp_path)
    fields = {"id": "article_no", "content": "body_text", "date": "pub_time"}
    settings = replace(IngestConfig(), export_fields=fields)
    (document,) = load_file(path, tmp_path, settings)
    assert (document.doc_id, document.title, document.date) == ("feed-17", "标题", "2024-05-10")
    assert paragraphs(document) == ["正文一段。"]


def test_an_export_is_never_read_as_prose(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("名称,数量\n苹果,3\n", encoding="utf-8")
    with pytest.raises(LoadError, match="no usable records"):
        load_file(path, tmp_path)


# --- plain text conventions --------------------------------------------------------------


def test_headline_date_source_and_byline_of_a_text_file() -> None:
    (document,) = load_file(FIXTURES / "fujian_headline.txt", FIXTURES)
    assert document.title == "福建首个海上风电母港在福清投运"
    assert document.blocks[0].is_heading  # not glued to the first paragraph
    assert (document.date, document.source, document.author) == (
        "2024-05-07", "福建日报", "林涛、陈雪")
    assert paragraphs(document)[0].startswith("5月6日，福建首个海上风电母港")
    assert "本报讯" not in everything(document) and "来源" not in everything(document)


def test_gbk_text_with_headline_and_a_bare_date_line() -> None:
    (document,) = load_file(FIXTURES / "jiangxi_gbk.txt", FIXTURES)
    assert (document.title, document.date) == ("南昌地铁四号线开通初期运营", "2024-05-06")
    assert paragraphs(document) == [
        "南昌地铁四号线5月6日开通初期运营，线路全长三十九点六公里，设车站二十九座。"
        "四号线开通后，南昌轨道交通运营里程达到一百二十八公里。"
    ]


def test_a_few_bad_bytes_are_replaced_and_their_offsets_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="qa.ingest.decoding"):
        (document,) = load_file(FIXTURES / "anhui_damaged.txt", FIXTURES)
    assert document.source == "安徽日报"
    body = paragraphs(document)
    assert "\ufffd" in body[0] and body[0].endswith("核心零部件企业五百余家。")
    assert body[1].startswith("业内人士认为")
    (warning,) = [r.message for r in caplog.records if "undecodable" in r.message]
    assert "anhui_damaged.txt" in warning and "byte offset 130-132, 264-266" in warning


@pytest.mark.parametrize(
    ("first_line", "is_headline"),
    [
        ("浙江召开全省经济形势分析会", True),
        ("浙江召开全省经济形势分析会。", False),  # a sentence
        ("浙江召开全省经济形势分析会，", False),  # a clause that goes on
        ("本报记者 张三", False),  # a byline
        ("2024-05-10 来源：浙江日报", False),  # a date line
        ("这是一段很长的第一行文字，超过了标题应有的长度，" * 2, False),  # over 40 characters
    ],
)
def test_which_first_lines_are_headlines(
    tmp_path: Path, first_line: str, is_headline: bool
) -> None:
    path = tmp_path / "a.txt"
    path.write_text(f"{first_line}\n正文第一段。\n", encoding="utf-8")
    document = load_document(path)
    assert document.blocks[0].is_heading is is_headline


@pytest.mark.parametrize(
    ("line", "date", "source"),
    [
        ("2024年5月10日 09:30 | 来源：新华社 | 作者：张三", "2024-05-10", "新华社"),
        ("发布时间：2024/5/9 来源：人民网", "2024-05-09", "人民网"),
        ("时间：2024年05月08日 星期三", "2024-05-08", None),
    ],
)
def test_date_lines_near_the_top(tmp_path: Path, line: str, date: str, source: str) -> None:
    path = tmp_path / "dated.md"
    path.write_text(f"# 标题\n\n{line}\n\n正文第一段。\n", encoding="utf-8")
    document = load_document(path)
    assert (document.date, document.source) == (date, source)
    assert paragraphs(document) == ["正文第一段。"]


def test_front_matter_date_wins_over_the_body(tmp_path: Path) -> None:
    path = tmp_path / "post.md"
    path.write_text("---\ndate: 2024-01-02\n---\n2024年5月10日\n\n正文。\n", encoding="utf-8")
    assert load_document(path).date == "2024-01-02"


def test_a_date_deep_in_the_body_is_text_not_metadata(tmp_path: Path) -> None:
    body = "".join(f"第{n}段。\n\n" for n in range(1, 7)) + "2024年5月10日\n"
    path = tmp_path / "late.md"
    path.write_text("# 标题\n\n" + body, encoding="utf-8")
    document = load_document(path)
    assert document.date is None and "2024年5月10日" in paragraphs(document)[-1]


def test_records_with_one_id_keep_the_first(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    records = [{"id": 1, "content": "第一条。"}, {"id": 1, "content": "第二条。"}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records), "utf-8")
    (document,) = load_file(path, tmp_path)
    assert (document.doc_id, paragraphs(document)) == ("dup-1", ["第一条。"])


def test_csv_delimiter_comes_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "tabbed.csv"
    path.write_text("title\tcontent\n标题\t正文有逗号,分号;竖线|都不是分隔符。\n", "utf-8")
    (document,) = load_file(path, tmp_path)
    assert paragraphs(document) == ["正文有逗号,分号;竖线|都不是分隔符。"]


def test_a_source_line_stops_at_the_next_field(tmp_path: Path) -> None:
    path = tmp_path / "s.md"
    path.write_text("# 标题\n\n正文。\n\n来源：浙江日报 作者：张三\n", encoding="utf-8")
    assert load_document(path).source == "浙江日报"


@pytest.mark.parametrize("name", ["ningbo_port.docx", "hangzhou_report.pdf"])
def test_a_damaged_binary_file_is_a_load_error(tmp_path: Path, name: str) -> None:
    data = bytearray((FIXTURES / name).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = bytes(range(200)) * 2  # a scrambled stretch
    path = tmp_path / name
    path.write_bytes(bytes(data))
    try:
        load_file(path, tmp_path)
    except LoadError:
        pass  # or it loads what is left: either way, no other exception
