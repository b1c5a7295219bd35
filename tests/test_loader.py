"""Loader: the shipped articles, encodings, skipped files and body formats."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.ingest.document import Document
from qa.ingest.loader import LoadError, load_corpus, load_document
from qa.ingest.sentences import ends_sentence

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
SHIPPED = {path.name[:3]: path for path in sorted(CORPUS.glob("*.txt"))}


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def texts(document: Document, heading: bool | None = None) -> list[str]:
    return [b.text for b in document.blocks if heading is None or b.is_heading == heading]


# --- the shipped articles -----------------------------------------------------------


def test_003_metadata_and_clean_text() -> None:
    document = load_document(SHIPPED["003"])
    assert document.doc_id == "003_f6f549922cc68d70"
    assert document.title == "“宜宾模式”快速复制产融协同效应"
    assert document.date == "2022-05-19"  # 01:00 +0800: still the 19th, not the UTC 18th
    assert document.source == "经济参考报"
    assert document.url is not None and document.url.startswith("http://finews.zning.xyz/")
    assert document.category == "jingjicankaobao"
    assert document.tags == ("经济参考报新闻",)
    assert any("1600亿元" in text for text in texts(document))
    for text in texts(document):
        assert "文章来源" not in text and "返回" not in text
        assert re.search(r"</?[A-Za-z]", text) is None
        assert "&gt;" not in text and text == text.strip()
    assert any("1+1>2" in text for text in texts(document))


def test_000_strong_only_paragraphs_are_headings() -> None:
    document = load_document(SHIPPED["000"])
    headings = texts(document, heading=True)
    assert headings[:2] == ["智享酒博", "着力创新引领产业发展风向"]
    assert "依托酒博会等平台卖全球买全球" in headings
    assert document.title == "“智”造升级 “酒”享全球"
    assert document.date == "2022-01-17"
    assert document.source == "泸州新闻网"


def test_001_markdown_article() -> None:
    document = load_document(SHIPPED["001"])
    assert document.title == "山东：创造并引领市场 以优质供给赋能消费升级"
    assert (document.date, document.source, document.url, document.category) == (None,) * 4
    assert document.tags == ()
    assert document.blocks[0].is_heading and document.blocks[0].text == "编者按"
    body = texts(document, heading=False)
    assert not any(text.startswith("本报记者") for text in body)
    for fragment in [
        "两个国家制造业创新中心",
        "消费拉动作用",
        "加快发展时尚消费品产业",
        "品牌竞争力提升工程",
        "将举办2022“三品”",
        "包括消费品工业在内的智能工厂",
    ]:
        assert sum(fragment in text for text in body) == 1, fragment
    # List items lose their markers; the first one follows its lead-in unjoined.
    lead_in = body.index("对于下一步重点工作,许小月表示,浙江将重点抓好五方面工作:")
    assert body[lead_in + 1].startswith("一是聚焦“数智赋能")
    assert not any(text.startswith(("- ", "#")) for text in texts(document))


def test_001_every_paragraph_ends_a_sentence_or_leads_into_a_list() -> None:
    document = load_document(SHIPPED["001"])
    blocks = document.blocks
    for index, block in enumerate(blocks):
        if block.is_heading or ends_sentence(block.text):
            continue
        assert block.text.endswith((":", "：")), block.text
        assert blocks[index + 1].text.startswith("一是"), block.text


def test_shipped_corpus_loads_in_name_order(tmp_path: Path) -> None:
    result = load_corpus(CORPUS)
    assert result.skipped == []
    # 001 holds four reports, one document each (see test_ingest_reports.py).
    assert [d.doc_id for d in result.documents] == [
        "000_3fe2b75bc59c04cf",
        "001_217b2f632fd65200",
        "001_217b2f632fd65200-2",
        "001_217b2f632fd65200-3",
        "001_217b2f632fd65200-4",
        "002_afe709c459728e6e",
        "003_f6f549922cc68d70",
        "004_115f34327fef69f1",
    ]
    for document in result.documents:
        assert document.title and texts(document, heading=False)
        assert all(b.text and b.text == b.text.strip() for b in document.blocks)
    by_id = {d.doc_id[:3]: d for d in result.documents}
    assert "…………" not in texts(by_id["004"])  # dots-only paragraph dropped
    assert by_id["002"].date == "2022-04-22" and by_id["004"].source == "江西日报"


# --- encodings and skipped files ------------------------------------------------------


def test_utf8_with_bom_and_front_matter(tmp_path: Path) -> None:
    content = "---\ntitle: 带BOM的文章\ndate: 2022-03-01\n---\n<p>正文。</p>\n"
    path = write(tmp_path, "bom.txt", b"\xef\xbb\xbf" + content.encode("utf-8"))
    document = load_document(path)
    assert (document.title, document.date) == ("带BOM的文章", "2022-03-01")
    assert texts(document) == ["正文。"]


def test_gb18030_fallback(tmp_path: Path) -> None:
    text = "# 国标编码\n\n这是一段用GB18030编码的正文，\n没有问题。\n"
    document = load_document(write(tmp_path, "gb.txt", text.encode("gb18030")))
    assert document.title == "国标编码"
    assert texts(document, heading=False) == ["这是一段用GB18030编码的正文，没有问题。"]


def test_bad_files_are_skipped_and_the_rest_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "a_good.md", "好的段落。\n")
    write(tmp_path, "b_binary.bin", b"PK\x03\x04\x00\x00binary")
    write(tmp_path, "c_undecodable.txt", b"\x81\xff\xfe\x80 text \xff")
    write(tmp_path, "d_empty.txt", "")
    write(tmp_path, "e_blank.txt", " \n\n\t\n")
    write(tmp_path, "f_dots.txt", "# 只有标题\n\n…………\n")
    write(tmp_path, ".gitkeep", "")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "nested.txt", "不读子目录。")

    with caplog.at_level(logging.INFO, logger="qa.ingest.loader"):
        result = load_corpus(tmp_path)

    # Subfolders are read too; their files' ids carry the folder's name.
    assert [d.doc_id for d in result.documents] == ["a_good", "sub-nested"]
    reasons = {Path(s.path).name: s.reason for s in result.skipped}
    assert set(reasons) == {
        "b_binary.bin",
        "c_undecodable.txt",
        "d_empty.txt",
        "e_blank.txt",
        "f_dots.txt",
    }
    assert reasons["b_binary.bin"] == "unsupported type .bin"
    assert "GB18030" in reasons["c_undecodable.txt"]
    assert reasons["d_empty.txt"] == reasons["e_blank.txt"] == "empty file"
    assert reasons["f_dots.txt"] == "no text paragraphs"
    assert sum("skipping" in r.message for r in caplog.records) == 5


def test_load_document_raises_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="empty"):
        load_document(write(tmp_path, "empty.txt", ""))
    with pytest.raises(LoadError, match="cannot read"):
        load_document(tmp_path / "missing.txt")


def test_duplicate_stems_keep_the_first(tmp_path: Path) -> None:
    write(tmp_path, "same.md", "第一个。")
    write(tmp_path, "same.txt", "第二个。")
    result = load_corpus(tmp_path)
    assert [texts(d) for d in result.documents] == [["第一个。"]]
    assert "duplicate doc_id" in result.skipped[0].reason


# --- body formats ---------------------------------------------------------------------


def test_markdown_list_items_and_bylines(tmp_path: Path) -> None:
    content = (
        "## 编者按\n\n编者的说明。\n\n# 真正的标题\n\n本报记者 张三\n\n主要有三点：\n\n"
        "- 第一项。\n* 第二项，\n  续行。\n1. 第三项。\n\n**加粗**的[链接](http://x.cn)段落。\n"
    )
    document = load_document(write(tmp_path, "list.md", content))
    assert document.title == "真正的标题"
    assert texts(document, heading=False) == [
        "编者的说明。",
        "主要有三点：",
        "第一项。",
        "第二项，续行。",
        "第三项。",
        "加粗的链接段落。",
    ]


def test_front_matter_with_markdown_body(tmp_path: Path) -> None:
    content = (
        "---\ntitle: Markdown 正文\ndate: 2022-01-17 20:51:36\n"
        "categories: [财经, 产业]\ntags: 数字化 产业\n---\n\n## 小标题\n\n"
        "被切断的段\n\n落在这里。\n\n(文章来源:新华社)\n\n<https://example.com/a>\n"
    )
    document = load_document(write(tmp_path, "fm.md", content))
    assert (document.title, document.date) == ("Markdown 正文", "2022-01-17")
    assert (document.category, document.tags) == ("财经", ("数字化", "产业"))
    assert (document.source, document.url) == ("新华社", "https://example.com/a")
    assert texts(document) == ["小标题", "被切断的段落在这里。"]


def test_html_body_without_front_matter(tmp_path: Path) -> None:
    content = (
        "<h2>网页标题</h2>\n<p class='x'>第一段&amp;内容，<br/>\n第二行。</p>"
        "<p><b>加粗</b><strong>小标题</strong></p><p>  </p><p>来源：人民网</p>"
    )
    document = load_document(write(tmp_path, "page.html", content))
    assert document.title == "网页标题" and document.source == "人民网"
    assert [(b.text, b.is_heading) for b in document.blocks] == [
        ("网页标题", True),
        ("第一段&内容，第二行。", False),
        ("加粗小标题", True),
    ]


def test_unusual_front_matter_values(tmp_path: Path) -> None:
    content = "---\ntitle: 冒号: 没加引号\ndate: 2022/5/9\ncategories: finance\n---\nPlain\ntext.\n"
    document = load_document(write(tmp_path, "odd.txt", content))
    assert (document.title, document.date, document.category) == (
        "冒号: 没加引号",
        "2022-05-09",
        "finance",
    )
    assert texts(document) == ["Plain text."]  # Latin lines are joined with a space


def test_markdown_with_inline_html_is_still_markdown(tmp_path: Path) -> None:
    content = "---\n注意: 这不是元数据。\n---\n\n增长率<5%，<span>被切</span>\n\n断了。<br>\n"
    document = load_document(write(tmp_path, "inline.md", content))
    assert document.date is None
    assert texts(document) == ["注意: 这不是元数据。", "增长率<5%，被切断了。"]


def test_title_falls_back_to_the_first_line(tmp_path: Path) -> None:
    long_line = "这是一段没有标题的正文" * 6 + "。"
    document = load_document(write(tmp_path, "untitled.txt", long_line))
    assert document.title == long_line[:40] + "…"


@pytest.mark.parametrize(
    "line", ["（文章来源：经济日报）", "(文章来源:经济日报)", "来源：经济日报", "来源:经济日报"]
)
def test_source_line_variants(tmp_path: Path, line: str) -> None:
    document = load_document(write(tmp_path, "s.txt", f"正文。\n\n{line}\n"))
    assert document.source == "经济日报"
    assert texts(document) == ["正文。"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("好。", True),
        ("他说：“好。”", True),
        ("是吗？）", True),
        ("第一；", True),
        ("……", True),
        ("消费拉", False),
        ("试点园区(平台)", False),
        ("五方面工作：", False),
        ("工作:", False),
        ("", False),
    ],
)
def test_ends_sentence(text: str, expected: bool) -> None:
    assert ends_sentence(text) is expected


CJK_WORDS = ["宜宾", "白酒", "产业", "营业收入", "京东", "数字化", "景德镇", "2022年"]
cjk_paragraph = st.lists(st.sampled_from(CJK_WORDS), min_size=2, max_size=12).map(
    lambda words: "".join(words) + "。"
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(paragraphs=st.lists(cjk_paragraph, min_size=1, max_size=6), data=st.data())
def test_cut_paragraphs_are_rejoined(
    tmp_path: Path, paragraphs: list[str], data: st.DataObject
) -> None:
    pieces = []
    for paragraph in paragraphs:
        # Any cut inside the paragraph, down to a lone "。" left for the next piece.
        cut = data.draw(st.integers(min_value=1, max_value=len(paragraph) - 1))
        pieces += [paragraph[:cut], paragraph[cut:]]
    # Under a Markdown title: a short unpunctuated first line would be the headline.
    content = "# 标题\n\n" + "\n\n".join(pieces)
    document = load_document(write(tmp_path, "cut.txt", content))
    assert texts(document, heading=False) == paragraphs


MARKUP = ["<p>", "</p>", "<strong>", "</strong>", "---\n", "## ", "- ", "\n\n", "\r\n", "&gt;"]
TEXT_BITS = [
    "来源：",
    "（文章来源：",
    "）",
    "返回",
    "[",
    "](",
    ")",
    "<http://x.cn>",
    "。",
    "…",
    "a",
]
junk_file = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from(MARKUP + TEXT_BITS + CJK_WORDS), max_size=60).map(
        lambda bits: "".join(bits).encode("utf-8")
    ),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=junk_file)
def test_any_file_loads_cleanly_or_raises_load_error(tmp_path: Path, data: bytes) -> None:
    try:
        document = load_document(write(tmp_path, "junk.txt", data))
    except LoadError:
        return
    assert any(not block.is_heading for block in document.blocks)
    for block in document.blocks:
        assert block.text == block.text.strip() and any(c.isalnum() for c in block.text)
