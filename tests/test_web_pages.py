"""The chat page, the article page and their assets, through the Flask test client."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import qa.web
from qa.index.local_engine import LocalSnapshot
from qa.ingest.document import Block, Document
from qa.web import create_app
from qa.web.pages import shown_category
from tests.fakes import store_raw_document
from tests.test_api import IMAGE, SCRIPT, tiny_retriever

RAW_HTML_DOCUMENT = Document(
    doc_id="raw-html",
    path="raw-html.txt",
    blocks=(
        Block("标题里也有 <b>标签</b>", is_heading=True),
        Block(f"正文第一段：{SCRIPT}"),
        Block(f"正文第二段：{IMAGE} 和 &amp; 实体"),
    ),
    title=f"{SCRIPT}{IMAGE}",
    source="<i>来源</i>",
    date="2022-01-01",
    url="javascript:alert(1)",
)


@pytest.fixture(scope="module")
def retriever(tmp_path_factory):
    retriever = tiny_retriever(tmp_path_factory.mktemp("pages"))
    # Stored directly, so the test holds whatever the loader does with markup in a body.
    store_raw_document(retriever.engine, RAW_HTML_DOCUMENT)
    yield retriever
    retriever.engine.close()


@pytest.fixture(scope="module")
def client(retriever):
    return create_app(retriever.config, retriever).test_client()


class Assets(HTMLParser):
    """Collects every URL a page loads or links to, and the ids of its elements."""

    def __init__(self):
        super().__init__()
        self.loaded: list[str] = []
        self.links: list[str] = []
        self.ids: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append(tag)
        if "id" in attributes:
            self.ids.append(attributes["id"])
        if tag in ("script", "img", "iframe", "source", "video", "audio") and attributes.get("src"):
            self.loaded.append(attributes["src"])
        if tag == "link" and attributes.get("href"):
            self.loaded.append(attributes["href"])
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])


def parse(html: str) -> Assets:
    assets = Assets()
    assets.feed(html)
    return assets


def test_the_chat_page_is_chinese_and_loads_only_its_own_assets(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html and "新闻问答" in html and "发送" in html
    page = parse(html)
    assert {"conversation", "ask-form", "question", "send"} <= set(page.ids)
    assert page.loaded and all(url.startswith("/static/") for url in page.loaded)
    for url in page.loaded:
        asset = client.get(url)
        assert asset.status_code == 200, url
        asset.close()
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "connect-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_chat_page_has_the_configured_limits(tmp_path):
    retriever = tiny_retriever(tmp_path, retrieval={"top_k": 3, "max_question_chars": 200})
    html = create_app(retriever.config, retriever).test_client().get("/").get_data(as_text=True)
    assert 'maxlength="200"' in html
    assert '<option value="3" selected>' in html
    retriever.engine.close()


STATIC = sorted(p.name for p in (Path(qa.web.__file__).parent / "static").iterdir())


def test_the_static_folder_holds_the_expected_assets():
    assert {"style.css", "chat.js", "cards.js", "permalink.js", "history.js", "doc.js",
            "favicon.svg"} <= set(STATIC)


@pytest.mark.parametrize("name", STATIC)
def test_static_assets_reach_for_nothing_outside(client, name):
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    response.close()
    # An SVG's namespace is a name, not a download.
    text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import", text, re.I), name
    if name.endswith(".js"):
        # Data reaches the page as text only.
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text
        assert "document.write" not in text and "eval(" not in text


def test_the_article_page_numbers_paragraphs_for_citations(client, retriever):
    response = client.get("/doc/yibin")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    page = parse(html)
    with retriever.engine.snapshot() as snapshot:
        document = snapshot.document("yibin")
    numbers = [n for n in document.paragraph_numbers() if n is not None]
    assert [i for i in page.ids if i.startswith("p")] == [f"p{n}" for n in numbers]
    assert "“宜宾模式”快速复制产融协同效应" in html and "经济参考报" in html
    assert "http://news.example.com/yibin" in page.links
    assert "1600亿元" in html
    assert "/static/doc.js" in page.loaded


def test_the_article_page_shows_markup_as_text(client):
    html = client.get("/doc/raw-html").get_data(as_text=True)
    page = parse(html)
    for tag in ("b", "i", "img"):
        assert tag not in page.tags
    assert page.tags.count("script") == 1  # doc.js, nothing from the document
    assert SCRIPT not in html and IMAGE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&amp;amp; 实体" in html
    # A javascript: "original URL" is not linked.
    assert not [link for link in page.links if "javascript" in link.lower()]


def test_an_unknown_article_is_an_html_404(client):
    response = client.get("/doc/..%2Fconfig.yaml")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "找不到" in response.get_data(as_text=True)


def test_an_unknown_page_is_an_html_404_and_api_paths_stay_json(client):
    page = client.get("/nope")
    assert page.status_code == 404 and page.mimetype == "text/html"
    api = client.get("/api/nope")
    assert api.status_code == 404 and api.mimetype == "application/json"


def test_a_crash_on_a_page_is_an_html_500_without_details(retriever, monkeypatch):
    client = create_app(retriever.config, retriever).test_client()

    def broken(doc_id):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(LocalSnapshot, "document", lambda self, doc_id: broken(doc_id))
    response = client.get("/doc/yibin")
    assert response.status_code == 500 and response.mimetype == "text/html"
    assert "secret" not in response.get_data(as_text=True)


def test_the_api_documents_endpoint_drops_a_javascript_url(client):
    body = client.get("/api/documents/raw-html").get_json()
    assert body["url"] is None
    assert body["title"] == f"{SCRIPT}{IMAGE}"


def test_the_chat_page_offers_history_clearing_and_citation_copying(client):
    page = parse(client.get("/").get_data(as_text=True))
    assert {"clear-history", "announcer", "composer-hint", "card-template"} <= set(page.ids)
    assert ["/static/permalink.js", "/static/history.js", "/static/cards.js",
            "/static/filters.js", "/static/archive.js",
            "/static/chat.js"] == [u for u in page.loaded if u.endswith(".js")]


def test_the_chat_page_has_the_archive_panel_and_the_filters(client):
    html = client.get("/").get_data(as_text=True)
    page = parse(html)
    assert {"archive", "archive-open", "key-form", "api-key", "drop-zone", "upload-files",
            "filters", "filter-toggle", "source-options", "filter-since", "filter-until",
            "sort"} <= set(page.ids)
    # The picker offers what the loader reads; the key form never sends the key in a URL.
    assert 'accept=".txt,.md,.markdown,.html,.htm,.pdf,.docx,.jsonl,.json,.csv"' in html
    assert re.search(r'<form class="key-form"[^>]*method="post"', html)
    assert 'type="password" id="api-key"' in html


def test_the_article_page_gives_each_block_its_offsets_in_the_clean_text(client, retriever):
    html = client.get("/doc/yibin").get_data(as_text=True)
    with retriever.engine.snapshot() as snapshot:
        document = snapshot.document("yibin")
    found = re.findall(r'data-start="(\d+)" data-end="(\d+)"', html)
    offsets = [(int(start), int(end)) for start, end in found]
    assert offsets == document.block_spans()
    for block in document.blocks:
        assert f'<span class="block-text">{block.text}</span>' in html


@pytest.mark.parametrize(("category", "source", "shown"), [
    ("jiangxiribao", "江西日报", None),
    ("luzhouxinwenwang", "泸州新闻网", None),
    ("Jiangxi-Ribao", "江西日报", None),
    ("江西日报", "江西日报", None),
    ("caijing", "江西日报", "caijing"),  # two syllables for four characters: not the source
    ("财经", "江西日报", "财经"),
    ("finance", None, "finance"),
    ("jiangxiribao", "Jiangxi Daily", "jiangxiribao"),
    ("  ", "江西日报", None),
    (None, "江西日报", None),
])
def test_a_category_that_only_repeats_the_source_is_not_shown(category, source, shown):
    assert shown_category(category, source) == shown


def test_the_article_page_leaves_out_a_pinyin_category(tmp_path):
    retriever = tiny_retriever(tmp_path)
    store_raw_document(retriever.engine, Document(
        doc_id="jx", path="jx.txt", blocks=(Block("正文。"),), title="标题", source="江西日报",
        category="jiangxiribao"))
    store_raw_document(retriever.engine, Document(
        doc_id="cj", path="cj.txt", blocks=(Block("正文。"),), title="标题", source="江西日报",
        category="财经"))
    client = create_app(retriever.config, retriever).test_client()
    assert "jiangxiribao" not in client.get("/doc/jx").get_data(as_text=True)
    assert "<span>财经</span>" in client.get("/doc/cj").get_data(as_text=True)
    retriever.engine.close()
