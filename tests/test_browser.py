"""The chat page and the article page in headless Chromium, against the real waitress server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.retriever import Retriever
from qa.web import create_app
from qa.web.server import ServerThread, make_server
from tests.test_api import IMAGE, SCRIPT, tiny_retriever
from tests.test_web_pages import RAW_HTML_DOCUMENT

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
WAIT_MS = 30_000
ANSWER_WAIT_MS = 90_000
QUESTION = "2021年宜宾白酒产业的营业收入是多少？"



def serve(retriever: Retriever) -> ServerThread:
    """The app under waitress on a free loopback port, in a background thread."""
    app = create_app(retriever.config, retriever)
    return ServerThread(make_server(app, "127.0.0.1", 0, retriever.config.server.threads)).start()


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory) -> Iterator[str]:
    retriever = tiny_retriever(tmp_path_factory.mktemp("browser"))
    retriever.index.store.add_document(RAW_HTML_DOCUMENT, [])
    server = serve(retriever)
    yield server.url
    server.stop()
    retriever.index.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=WAIT_MS
        )
        yield browser
        browser.close()


class Tab:
    """A page that records dialogs, script errors and any request leaving the server."""

    def __init__(self, browser, base: str, width: int = 1180, height: int = 900):
        self.base = base
        self.context = browser.new_context(viewport={"width": width, "height": height},
                                           locale="zh-CN")
        self.context.set_default_timeout(WAIT_MS)
        self.outside: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._only_local)
        self.page = self.context.new_page()
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _only_local(self, route) -> None:
        if route.request.url.startswith(self.base + "/"):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def ask(self, question: str) -> None:
        self.page.fill("#question", question)
        self.page.press("#question", "Enter")

    def close(self) -> None:
        self.context.close()
        assert not self.outside, f"requests left the server: {self.outside}"
        assert not self.dialogs, f"a dialog opened: {self.dialogs}"
        assert not self.errors, f"script errors: {self.errors}"


@pytest.fixture
def tab(browser, fake_server) -> Iterator[Tab]:
    tab = Tab(browser, fake_server)
    yield tab
    tab.close()


@pytest.mark.integration
def test_ask_see_the_cited_answer_and_open_the_article(browser, real_retriever):
    from playwright.sync_api import expect

    server = serve(real_retriever)
    tab = Tab(browser, server.url)
    page = tab.page
    try:
        page.goto(server.url + "/")
        expect(page.locator("#status")).to_contain_text("已收录 5 篇文章")
        tab.ask(QUESTION)
        expect(page.locator(".bubble.question")).to_have_text(QUESTION)
        card = page.locator(".card").filter(has_text="1600亿元").filter(has_text="经济参考报")
        expect(card.first).to_be_visible(timeout=ANSWER_WAIT_MS)
        card = card.first
        expect(card.locator("mark.answer")).to_contain_text("1600亿元")
        expect(card.locator(".card-title")).to_have_text("“宜宾模式”快速复制产融协同效应")
        expect(card.locator(".card-meta")).to_contain_text("2022-05-19")
        expect(card.locator(".card-meta")).to_contain_text(re.compile(r"第 \d+ 段"))
        expect(page.locator(".bubble.loading")).to_have_count(0)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "chat-answer.png"))

        card.locator("a.open-doc", has_text="查看原文").click()
        page.wait_for_url(re.compile(r"/doc/[^/#]+#p\d+$"))
        number = page.url.rsplit("#p", 1)[1]
        cited = page.locator(".paragraph.is-cited")
        expect(cited).to_have_count(1)
        expect(cited).to_have_attribute("id", f"p{number}")
        expect(cited).to_contain_text("1600亿元")
        expect(cited).to_be_in_viewport()
        expect(page.locator(".article-link a")).to_have_attribute("href", re.compile("^http"))
        page.screenshot(path=str(ARTIFACTS / "doc-cited.png"))
    finally:
        tab.close()
        server.stop()


@pytest.mark.integration
def test_an_english_question_is_answered_in_the_page(browser, real_retriever):
    from playwright.sync_api import expect

    server = serve(real_retriever)
    tab = Tab(browser, server.url)
    try:
        tab.page.goto(server.url + "/")
        tab.ask("What was the revenue of the Yibin liquor industry in 2021?")
        expect(tab.page.locator(".card").first).to_be_visible(timeout=ANSWER_WAIT_MS)
        expect(tab.page.locator(".answer-summary")).to_contain_text("找到")
    finally:
        tab.close()
        server.stop()


def test_html_in_documents_shows_as_text_and_runs_nothing(tab):
    from playwright.sync_api import expect

    page = tab.page
    page.goto(tab.base + "/")
    tab.ask("网页代码测试，评论区贴了代码")
    title = page.locator(".card-title", has_text=SCRIPT)
    expect(title.first).to_be_visible()
    expect(title.first).to_contain_text(IMAGE)
    expect(page.locator(".card img, .card script")).to_have_count(0)

    page.goto(tab.base + "/doc/raw-html")
    expect(page.locator("h1.article-title")).to_have_text(SCRIPT + IMAGE)
    expect(page.locator("#p1")).to_contain_text(SCRIPT)
    expect(page.locator("#p2")).to_contain_text(IMAGE)
    expect(page.locator(".article img, .article b, .article i")).to_have_count(0)
    expect(page.locator("script")).to_have_count(1)
    # A javascript: original URL is not offered as a link.
    expect(page.locator(".article-link")).to_have_count(0)
    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert page.evaluate("document.images.length") == 0


def test_the_page_shows_errors_empty_results_and_low_confidence(tab):
    from playwright.sync_api import expect

    page = tab.page
    page.goto(tab.base + "/")
    replies = iter([
        (500, {"error": {"code": "internal_error", "message": "internal server error"}}),
        (200, {"question": "q", "took_ms": 1.0, "passages": []}),
        (200, {"question": "q", "took_ms": 1.0, "confident": False, "passages": [PASSAGE]}),
        (200, {"question": "q", "took_ms": 1.0, "passages": [PASSAGE]}),
    ])

    def reply(route):
        status, body = next(replies)
        route.fulfill(status=status, json=body)

    page.route("**/api/ask", reply)
    tab.ask("第一个问题")
    expect(page.locator(".bubble.error")).to_contain_text("出错了")
    expect(page.locator(".bubble.error")).to_contain_text("internal server error")
    tab.ask("第二个问题")
    expect(page.locator(".notice.empty")).to_have_text("没有找到相关内容，换个问法试试。")
    tab.ask("第三个问题")
    expect(page.locator(".notice.unsure")).to_have_count(1)
    expect(page.locator(".card")).to_have_count(1)
    tab.ask("第四个问题")
    expect(page.locator(".card")).to_have_count(2)
    expect(page.locator(".notice.unsure")).to_have_count(1)
    expect(page.locator(".bubble.question")).to_have_count(4)


def test_a_lost_connection_is_a_clear_message(tab):
    from playwright.sync_api import expect

    page = tab.page
    page.goto(tab.base + "/")
    page.route("**/api/ask", lambda route: route.abort())
    tab.ask("宜宾")
    expect(page.locator(".bubble.error")).to_contain_text("无法连接服务器")
    expect(page.locator("#send")).to_be_enabled()


def test_shift_enter_is_a_new_line_and_enter_sends(tab):
    from playwright.sync_api import expect

    page = tab.page
    page.goto(tab.base + "/")
    page.fill("#question", "宜宾")
    page.press("#question", "Shift+Enter")
    expect(page.locator(".bubble.question")).to_have_count(0)
    page.press("#question", "Enter")
    expect(page.locator(".bubble.question")).to_have_count(1)
    expect(page.locator("#question")).to_have_value("")


def test_the_chosen_search_mode_and_count_are_sent(tab):
    import json

    page = tab.page
    page.goto(tab.base + "/")
    page.select_option("#mode", "keyword")
    page.select_option("#top-k", "3")
    with page.expect_response(lambda r: r.url.endswith("/api/ask")) as response:
        tab.ask("宜宾白酒")
    body = json.loads(response.value.request.post_data)
    assert body == {"question": "宜宾白酒", "top_k": 3, "mode": "keyword"}
    assert response.value.json()["mode"] == "keyword"


def test_it_works_on_a_phone_sized_screen(browser, fake_server):
    from playwright.sync_api import expect

    tab = Tab(browser, fake_server, width=390, height=844)
    page = tab.page
    try:
        page.goto(fake_server + "/")
        page.locator(".example").first.click()
        expect(page.locator(".card").first).to_be_visible()
        expect(page.locator("#send")).to_be_in_viewport()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "chat-phone.png"))
        page.locator(".card a.open-doc").first.click()
        expect(page.locator(".paragraph.is-cited")).to_have_count(1)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        tab.close()


PASSAGE = {
    "rank": 1,
    "score": 0.42,
    "text": "一段关联不强的文字。",
    "highlight": {"start": 0, "end": 10},
    "citation": {
        "doc_id": "yibin", "title": "标题", "source": "来源", "date": "2022-01-01",
        "url": None, "section": None, "paragraph": 1, "char_start": 0, "char_end": 10,
    },
}


def test_wire_copies_are_listed_under_the_passage(tab):
    from playwright.sync_api import expect

    page = tab.page
    page.goto(tab.base + "/")
    copy = dict(PASSAGE["citation"], doc_id="xinhua-copy", source="新华社", paragraph=3)
    body = {"question": "q", "took_ms": 1.0,
            "passages": [dict(PASSAGE, also_in=[copy]), dict(PASSAGE, rank=2, also_in=[])]}
    page.route("**/api/ask", lambda route: route.fulfill(status=200, json=body))
    tab.ask("宜宾白酒")
    also = page.locator(".card .also-in")
    expect(also).to_have_count(1)
    expect(also).to_contain_text("亦见于：新华社")
    expect(also.locator("a")).to_have_attribute("href", "/doc/xinhua-copy#p3")
