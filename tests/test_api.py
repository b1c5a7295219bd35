"""The JSON API through the Flask test client; every response is checked against OpenAPI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

from qa.config import Config, config_from_mapping, resolve_paths
from qa.errors import IndexMissingError
from qa.index.saved_index import build_index, open_index
from qa.retriever import Retriever
from qa.web import create_app
from qa.web.ask_request import ASK_FIELDS, FILTER_PARAMETERS
from qa.web.openapi import openapi_document
from tests.fakes import FakeEmbedder

SCRIPT = "<script>alert(1)</script>"
IMAGE = "<img src=x onerror=alert(1)>"

TINY_CORPUS = {
    "yibin.txt": """---
title: "“宜宾模式”快速复制产融协同效应"
date: 2022-05-19
---
文章来源：经济参考报

## 白酒产业

白酒是宜宾的传统优势产业。2021年，宜宾白酒产业的营业收入突破1600亿元，约占全国白酒行业的27%。

宜宾还在发展动力电池和晶硅光伏产业，引进了一批龙头企业。

原文链接：http://news.example.com/yibin
""",
    "jingdezhen.txt": """---
title: 景德镇：让陶瓷产业插上“数字翅膀”
date: 2022-04-17
---
文章来源：江西日报

景德镇陶瓷企业用数字化设计和电商直播，把千年瓷都的产品卖向全国。

陶瓷大数据中心汇集了产区的订单、窑炉和物流信息。
""",
    "xss.txt": f"""---
title: "网页代码 {SCRIPT} 与 {IMAGE} 的测试"
---
有人在评论区贴了 {SCRIPT} 这样的代码，用来测试网页安全。

另一段里还有 {IMAGE} 这张图片，也要原样显示为文字。
""",
}


def write_tiny_corpus(folder: Path) -> Path:
    """Three short articles, one of them full of HTML that must stay text."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in TINY_CORPUS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def tiny_config(base: Path, **settings) -> Config:
    """Settings for an index in `base`, built with the fake embedder."""
    settings.setdefault("model", {}).setdefault("name", "fake-embedder")
    return resolve_paths(config_from_mapping(settings), base)


def tiny_retriever(base: Path, **settings) -> Retriever:
    """A retriever on a freshly built index of the tiny corpus, with the fake embedder."""
    config = tiny_config(base, **settings)
    build_index(config, FakeEmbedder(), write_tiny_corpus(base / "corpus"), config.index_dir)
    return Retriever(config, open_index(config), FakeEmbedder())


# Every engine answers the same API (Milvus through Milvus Lite).
@pytest.fixture(scope="module", params=["local", "milvus"])
def retriever(tmp_path_factory, request):
    retriever = tiny_retriever(tmp_path_factory.mktemp("api"), engine=request.param)
    yield retriever
    retriever.engine.close()


@pytest.fixture(scope="module")
def client(retriever):
    return create_app(retriever.config, retriever).test_client()


@pytest.fixture(scope="module")
def openapi(client):
    return client.get("/api/openapi.json").get_json()


def check(openapi: dict, response, path: str, method: str = "get", status: int = 200) -> dict:
    """Assert the status and that the body matches the OpenAPI response schema; return it."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    operation = openapi["paths"].get(path, {}).get(method)
    if operation is not None and str(status) in operation["responses"]:
        schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    else:
        # Unknown routes and methods have no operation; they still answer the error shape.
        assert status >= 400
        schema = {"$ref": "#/components/schemas/Error"}
    Draft202012Validator({**schema, "components": openapi["components"]}).validate(body)
    if status >= 400:
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return body


def check_error(openapi, response, path, method, status, code):
    body = check(openapi, response, path, method, status)
    assert body["error"]["code"] == code
    assert "Traceback" not in body["error"]["message"]
    return body


# --- the OpenAPI document -------------------------------------------------------------------


def test_openapi_document_is_valid(openapi):
    validate_spec(openapi)
    assert openapi["openapi"].startswith("3.")
    assert set(openapi["paths"]) == {
        "/api/ask", "/api/health", "/api/documents", "/api/documents/{doc_id}",
        "/api/openapi.json", "/api/sources", "/metrics",
    }


def test_openapi_ask_request_lists_exactly_the_accepted_fields(openapi, retriever):
    schema = openapi["components"]["schemas"]["AskRequest"]
    assert list(schema["properties"]) == [field.name for field in ASK_FIELDS]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["question"]
    assert schema["properties"]["top_k"]["maximum"] == retriever.config.retrieval.max_top_k
    parameters = openapi["paths"]["/api/ask"]["get"]["parameters"]
    assert [p["name"] for p in parameters] == [
        field.query_name for field in ASK_FIELDS if field.in_query] + list(FILTER_PARAMETERS)


def test_openapi_document_follows_the_config(tmp_path):
    config = tiny_config(tmp_path, retrieval={"max_question_chars": 77})
    document = openapi_document(config)
    validate_spec(document)
    question = document["components"]["schemas"]["AskRequest"]["properties"]["question"]
    assert question["maxLength"] == 77


# --- asking -----------------------------------------------------------------------------------


def test_post_ask_answers_with_ranked_cited_passages(client, openapi):
    question = "2021年宜宾白酒产业的营业收入是多少？"
    body = check(openapi, client.post("/api/ask", json={"question": question}), "/api/ask",
                 "post")
    assert body["question"] == question
    assert [p["rank"] for p in body["passages"]] == list(range(1, len(body["passages"]) + 1))
    scores = [p["score"] for p in body["passages"]]
    assert scores == sorted(scores, reverse=True)
    best = body["passages"][0]
    assert "1600亿元" in best["text"]
    start, end = best["highlight"]["start"], best["highlight"]["end"]
    assert "1600亿元" in best["text"][start:end]
    citation = best["citation"]
    assert citation["doc_id"] == "yibin" and citation["source"] == "经济参考报"
    assert citation["date"] == "2022-05-19" and citation["url"] == "http://news.example.com/yibin"
    document = client.get("/api/documents/yibin").get_json()
    text = "\n".join(block["text"] for block in document["blocks"])
    assert text[citation["char_start"] : citation["char_end"]] == best["text"]
    # The cited paragraph is where the passage starts (short paragraphs merge with the next).
    cited = next(b for b in document["blocks"] if b["number"] == citation["paragraph"])
    assert cited["char_start"] <= citation["char_start"] < cited["char_end"]


def test_top_k_defaults_to_the_config_and_can_be_set(client, openapi, retriever):
    default = check(openapi, client.post("/api/ask", json={"question": "陶瓷"}), "/api/ask",
                    "post")
    chunks = retriever.engine.status()["chunks"]
    assert len(default["passages"]) == min(retriever.config.retrieval.top_k, chunks)
    one = check(openapi, client.post("/api/ask", json={"question": "陶瓷", "top_k": 1}),
                "/api/ask", "post")
    assert len(one["passages"]) == 1


def test_get_ask_is_the_same_as_post(client, openapi):
    got = check(openapi, client.get("/api/ask", query_string={"q": " 景德镇陶瓷 ", "k": "2"}),
                "/api/ask")
    posted = client.post("/api/ask", json={"question": "景德镇陶瓷", "top_k": 2}).get_json()
    assert got["question"] == "景德镇陶瓷"
    assert [p["text"] for p in got["passages"]] == [p["text"] for p in posted["passages"]]


def test_an_english_question_is_answered(client, openapi):
    body = check(openapi, client.post("/api/ask", json={"question": "How much revenue?"}),
                 "/api/ask", "post")
    assert body["passages"]


def test_a_charset_utf8_json_body_is_accepted(client, openapi):
    response = client.post("/api/ask", data=json.dumps({"question": "白酒"}).encode(),
                           content_type="application/json; charset=UTF-8")
    check(openapi, response, "/api/ask", "post")


# --- ask errors -------------------------------------------------------------------------------

BAD_QUESTIONS = ["", "   ", "\n\t", 123, None, True, ["宜宾"], {"q": "宜宾"}, "长" * 1001]


@pytest.mark.parametrize("question", BAD_QUESTIONS)
def test_post_rejects_a_bad_question(client, openapi, question):
    response = client.post("/api/ask", json={"question": question})
    check_error(openapi, response, "/api/ask", "post", 400, "invalid_question")


@pytest.mark.parametrize("top_k", [0, -1, 51, "5", 2.5, 5.5, True, None, [5]])
def test_post_rejects_a_bad_top_k(client, openapi, top_k):
    response = client.post("/api/ask", json={"question": "宜宾", "top_k": top_k})
    check_error(openapi, response, "/api/ask", "post", 400, "invalid_question")


def test_post_requires_the_question(client, openapi):
    response = client.post("/api/ask", json={"top_k": 3})
    check_error(openapi, response, "/api/ask", "post", 400, "missing_field")


def test_post_rejects_unknown_fields(client, openapi):
    response = client.post("/api/ask", json={"question": "宜宾", "mood": "happy"})
    body = check_error(openapi, response, "/api/ask", "post", 400, "unknown_field")
    assert "mood" in body["error"]["message"]


@pytest.mark.parametrize("body", [
    b"", b"{", b'{"question": "a",}', b"[1, 2]", b'"question"', b"null", b"NaN",
    b'{"question": NaN}', b"[" * 50000, b'{"question": "a"} trailing',
])
def test_post_rejects_malformed_json(client, openapi, body):
    response = client.post("/api/ask", data=body, content_type="application/json")
    check_error(openapi, response, "/api/ask", "post", 400, "malformed_json")


@pytest.mark.parametrize("body", [
    '{"question": "宜宾"}'.encode("gb18030"), b'{"question": "\xff\xfe"}', b"\x80",
    '{"question": "宜宾"}'.encode("utf-16"),
])
def test_post_rejects_a_body_that_is_not_utf8(client, openapi, body):
    response = client.post("/api/ask", data=body, content_type="application/json")
    check_error(openapi, response, "/api/ask", "post", 400, "invalid_encoding")


@pytest.mark.parametrize("content_type", [
    None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
    "application/json; charset=latin-1", "application/jsonx",
])
def test_post_rejects_a_non_json_content_type(client, openapi, content_type):
    data = json.dumps({"question": "宜宾"}).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/api/ask", data=data, headers=headers)
    check_error(openapi, response, "/api/ask", "post", 415, "unsupported_media_type")


def test_post_rejects_an_oversized_body(client, openapi, retriever):
    limit = retriever.config.server.max_body_bytes
    data = json.dumps({"question": "宜" * limit}).encode()
    response = client.post("/api/ask", data=data, content_type="application/json")
    check_error(openapi, response, "/api/ask", "post", 413, "body_too_large")


def test_body_and_question_limits_come_from_the_config(tmp_path):
    retriever = tiny_retriever(
        tmp_path, server={"max_body_bytes": 100}, retrieval={"max_question_chars": 10}
    )
    client = create_app(retriever.config, retriever).test_client()
    assert client.post("/api/ask", json={"question": "宜" * 10}).status_code == 200
    assert client.post("/api/ask", json={"question": "宜" * 11}).status_code == 400
    big = client.post("/api/ask", json={"question": "宜宾", "pad": "x" * 100})
    assert big.status_code == 413
    assert big.get_json()["error"]["code"] == "body_too_large"
    retriever.engine.close()


@pytest.mark.parametrize(("query", "code"), [
    ({}, "missing_field"),
    ({"k": "3"}, "missing_field"),
    ({"q": ""}, "invalid_question"),
    ({"q": "   "}, "invalid_question"),
    ({"q": "长" * 1001}, "invalid_question"),
    ({"q": "宜宾", "k": "abc"}, "invalid_question"),
    ({"q": "宜宾", "k": "0"}, "invalid_question"),
    ({"q": "宜宾", "k": "51"}, "invalid_question"),
    ({"q": "宜宾", "k": "2.5"}, "invalid_question"),
    ({"q": "宜宾", "k": "9" * 5000}, "invalid_question"),
    ({"q": "宜宾", "question": "宜宾"}, "unknown_field"),
    ({"q": ["宜宾", "陶瓷"]}, "invalid_parameter"),
])
def test_get_ask_errors(client, openapi, query, code):
    response = client.get("/api/ask", query_string=query)
    check_error(openapi, response, "/api/ask", "get", 400, code)


@settings(max_examples=60, deadline=None)
@given(payload=st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=3),
    max_leaves=8,
))
def test_any_json_body_gets_an_answer_or_a_4xx_error(client, openapi, payload):
    response = client.post("/api/ask", data=json.dumps(payload), content_type="application/json")
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    check(openapi, response, "/api/ask", "post", response.status_code)


@settings(max_examples=40, deadline=None)
@given(question=st.text(max_size=40), top_k=st.integers(min_value=1, max_value=50))
def test_any_text_question_gets_an_answer_or_a_400(client, openapi, question, top_k):
    response = client.post("/api/ask", json={"question": question, "top_k": top_k})
    expected = 200 if question.strip() else 400
    check(openapi, response, "/api/ask", "post", expected)


# --- health and documents ---------------------------------------------------------------------


def test_health_reports_model_counts_and_version(client, openapi, retriever):
    from qa import __version__

    body = check(openapi, client.get("/api/health"), "/api/health")
    status = retriever.engine.status()
    documents, chunks = status["documents"], status["chunks"]
    assert body["status"] == "ok" and body["model"] == "fake-embedder"
    assert body["index"]["documents"] == documents == 3
    assert body["index"]["chunks"] == chunks
    assert body["version"] == __version__


def test_documents_are_listed_in_pages(client, openapi):
    everything = check(openapi, client.get("/api/documents"), "/api/documents")
    assert everything["total"] == 3 and everything["offset"] == 0
    ids = [d["doc_id"] for d in everything["documents"]]
    assert ids == ["jingdezhen", "xss", "yibin"]
    page = check(openapi, client.get("/api/documents?offset=1&limit=1"), "/api/documents")
    assert [d["doc_id"] for d in page["documents"]] == ["xss"]
    assert page["limit"] == 1 and page["total"] == 3
    past = check(openapi, client.get("/api/documents?offset=10"), "/api/documents")
    assert past["documents"] == []
    yibin = everything["documents"][2]
    assert yibin["source"] == "经济参考报" and yibin["paragraphs"] == 2
    newest = check(openapi, client.get("/api/documents?sort=date"), "/api/documents")
    assert [d["doc_id"] for d in newest["documents"]] == ["yibin", "jingdezhen", "xss"]


@pytest.mark.parametrize("query", [
    "limit=0", "limit=101", "limit=abc", "offset=-1", "offset=1.5", "limit=", "page=2",
    "sort=title",
    "offset=" + "9" * 5000,
])
def test_bad_paging_is_rejected(client, openapi, query):
    response = client.get(f"/api/documents?{query}")
    body = check(openapi, response, "/api/documents", "get", 400)
    assert body["error"]["code"] in ("invalid_parameter", "unknown_field")


def test_a_document_has_its_blocks_with_numbers_and_offsets(client, openapi):
    body = check(openapi, client.get("/api/documents/yibin"), "/api/documents/{doc_id}")
    assert body["title"] == "“宜宾模式”快速复制产融协同效应"
    kinds = [(b["kind"], b["number"]) for b in body["blocks"]]
    assert kinds == [("heading", None), ("paragraph", 1), ("paragraph", 2)]
    text = "\n".join(b["text"] for b in body["blocks"])
    for block in body["blocks"]:
        assert text[block["char_start"] : block["char_end"]] == block["text"]


def test_document_text_with_html_comes_back_verbatim(client, openapi):
    body = check(openapi, client.get("/api/documents/xss"), "/api/documents/{doc_id}")
    assert SCRIPT in body["title"] and IMAGE in body["title"]


@pytest.mark.parametrize("doc_id", [
    "nope", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "yibin.txt", "YIBIN", "%00", "x" * 2000,
])
def test_an_unknown_document_is_404(client, openapi, doc_id):
    response = client.get(f"/api/documents/{doc_id}")
    body = check(openapi, response, "/api/documents/{doc_id}", "get", 404)
    assert body["error"]["code"] in ("document_not_found", "not_found")


# --- routing errors, 500 and the log ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/nope", "/api/ask/extra",
                                  "/api/documents/a/b", "/api/static/style.css"])
def test_unknown_api_routes_are_json_404s(client, openapi, path):
    check_error(openapi, client.get(path), path, "get", 404, "not_found")


@pytest.mark.parametrize(("method", "path"), [
    ("delete", "/api/ask"), ("put", "/api/ask"), ("post", "/api/health"),
    ("patch", "/api/documents"), ("patch", "/api/documents/yibin"), ("patch", "/api/openapi.json"),
])
def test_a_wrong_method_is_a_json_405_with_allow(client, openapi, method, path):
    response = getattr(client, method)(path, json={"question": "宜宾"})
    check_error(openapi, response, path, method, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_a_crash_is_a_json_500_without_the_traceback(retriever, openapi, monkeypatch, caplog):
    client = create_app(retriever.config, retriever).test_client()

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals at /srv/qa")

    monkeypatch.setattr(retriever, "ask", broken)
    with caplog.at_level(logging.ERROR, logger="qa.web"):
        response = client.post("/api/ask", json={"question": "宜宾"})
    body = check_error(openapi, response, "/api/ask", "post", 500, "internal_error")
    assert "secret" not in json.dumps(body)
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "secret internals" in str(logged[0].exc_info[1])


def test_each_request_is_logged_with_method_path_status_and_ms(client, caplog):
    with caplog.at_level(logging.INFO, logger="qa.web.request_log"):
        # The line is written when the server closes the response, as cheroot does.
        with client.post("/api/ask", json={"question": "宜宾"}):
            pass
        with client.get("/api/nope?q=private"):
            pass
    lines = [r.getMessage() for r in caplog.records if r.name == "qa.web.request_log"]
    assert lines[0].startswith("POST /api/ask 200 ") and lines[0].endswith(" ms")
    assert lines[1].startswith("GET /api/nope 404 ")
    assert "private" not in lines[1]


def test_create_app_without_an_index_raises_index_missing(tmp_path):
    with pytest.raises(IndexMissingError, match="qa index"):
        create_app(tiny_config(tmp_path))


def test_the_config_is_kept_whole_under_one_key(retriever):
    app = create_app(retriever.config, retriever)
    assert app.config["QA"] is retriever.config


def test_the_answer_json_cites_every_field_as_asdict_does():
    # Answer.to_dict builds the citation dicts itself (asdict's deep copies cost time).
    from dataclasses import asdict

    from qa.answer import Answer, Citation, Passage

    citation = Citation("d1", "标题", None, "2021-01-02", "https://x", "一", 3, 3, 4, 10, 90)
    other = Citation("d2", None, "新华社", None, None, None, 0, 0, 0, 0, 5)
    passage = Passage(1, 0.5, "文本", (0, 2), citation, 0.4, 2.5, (other,))
    data = Answer("问", 1.0, [passage]).to_dict()["passages"][0]
    assert data["citation"] == asdict(citation)
    assert list(data["citation"]) == list(asdict(citation))
    assert data["also_in"] == [asdict(other)]
