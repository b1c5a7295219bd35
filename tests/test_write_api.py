"""The write API: keys, add / replace / remove, idempotence, uploads, OpenAPI agreement."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from qa.web import create_app
from tests.test_api import check, check_error, tiny_retriever

KEY = "s3cret-key-for-tests"
WRITE = {"Authorization": f"Bearer {KEY}"}
ARTICLE = {
    "title": "梧州打造数字经济新高地",
    "text": "梧州市数字经济产业园今年引进企业42家。\n\n园区内的云计算中心已经投入使用，"
            "服务粤港澳大湾区的客户。",
    "date": "2024-05-10",
    "source": "广西日报",
    "url": "http://news.example.com/wuzhou",
}


# Every engine answers the same API (Milvus through Milvus Lite).
@pytest.fixture(scope="module", params=["local", "milvus"])
def retriever(tmp_path_factory, request):
    retriever = tiny_retriever(tmp_path_factory.mktemp("write"), engine=request.param)
    yield retriever
    retriever.engine.close()


@pytest.fixture
def client(retriever, monkeypatch):
    monkeypatch.setenv("QA_API_KEYS", f"another-key, {KEY}")
    return create_app(retriever.config, retriever).test_client()


@pytest.fixture(scope="module")
def openapi(retriever):
    return create_app(retriever.config, retriever).test_client().get(
        "/api/openapi.json").get_json()


def ask(client, question: str) -> list[str]:
    answer = client.get("/api/ask", query_string={"q": question, "k": 3}).get_json()
    return [p["citation"]["doc_id"] for p in answer["passages"]]


def test_without_a_configured_key_writes_are_off_and_say_how_to_enable_them(
        retriever, openapi, monkeypatch):
    monkeypatch.delenv("QA_API_KEYS", raising=False)
    client = create_app(retriever.config, retriever).test_client()
    body = check_error(openapi, client.post("/api/documents", json=ARTICLE, headers=WRITE),
                       "/api/documents", "post", 403, "writes_disabled")
    assert "QA_API_KEYS" in body["error"]["message"]
    assert client.get("/api/health").get_json()["writes"] is False


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "missing_key"),
    ({"Authorization": "Bearer wrong"}, "invalid_key"),
    ({"Authorization": f"Basic {KEY}"}, "missing_key"),
])
def test_a_missing_or_wrong_key_is_401(client, openapi, headers, code):
    response = client.delete("/api/documents/yibin", headers=headers)
    check_error(openapi, response, "/api/documents/{doc_id}", "delete", 401, code)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "yibin" in ask(client, "宜宾白酒产业的营业收入")


def test_add_ask_resend_replace_and_delete(client, openapi, caplog):
    caplog.set_level(logging.INFO)
    added = check(openapi, client.post("/api/documents", json=ARTICLE, headers=WRITE),
                  "/api/documents", "post", 201)
    doc_id = added["doc_id"]
    assert added["status"] == "added" and added["chunks"] >= 1
    assert ask(client, "梧州数字经济产业园引进了多少企业")[0] == doc_id
    stored = client.get(f"/api/documents/{doc_id}").get_json()
    assert (stored["title"], stored["date"], stored["source"]) == (
        ARTICLE["title"], "2024-05-10", "广西日报")
    assert [b["text"] for b in stored["blocks"]][0] == "梧州市数字经济产业园今年引进企业42家。"

    again = check(openapi, client.post("/api/documents", json=ARTICLE, headers=WRITE),
                  "/api/documents", "post", 200)
    assert (again["doc_id"], again["status"]) == (doc_id, "unchanged")
    assert again["generation"] == added["generation"]

    # The same URL with corrected text replaces the article rather than adding a second.
    corrected = ARTICLE | {"text": "梧州市数字经济产业园今年引进企业45家。"}
    replaced = check(openapi, client.post("/api/documents", json=corrected, headers=WRITE),
                     "/api/documents", "post", 200)
    assert (replaced["doc_id"], replaced["status"]) == (doc_id, "replaced")
    hits = client.get("/api/ask", query_string={"q": "梧州产业园引进企业", "k": 5}).get_json()
    texts = [p["text"] for p in hits["passages"] if p["citation"]["doc_id"] == doc_id]
    assert texts == ["梧州市数字经济产业园今年引进企业45家。"]

    put = check(openapi, client.put(f"/api/documents/{doc_id}", json=ARTICLE, headers=WRITE),
                "/api/documents/{doc_id}", "put", 200)
    assert put["status"] == "replaced"

    removed = check(openapi, client.delete(f"/api/documents/{doc_id}", headers=WRITE),
                    "/api/documents/{doc_id}", "delete")
    assert removed["status"] == "removed" and removed["generation"] > put["generation"]
    assert doc_id not in ask(client, "梧州数字经济产业园引进了多少企业")
    check_error(openapi, client.delete(f"/api/documents/{doc_id}", headers=WRITE),
                "/api/documents/{doc_id}", "delete", 404, "document_not_found")
    check_error(openapi, client.get(f"/api/documents/{doc_id}"),
                "/api/documents/{doc_id}", "get", 404, "document_not_found")
    assert KEY not in caplog.text


def test_put_creates_under_the_given_id_and_refuses_a_different_body_id(client, openapi):
    created = check(openapi, client.put("/api/documents/wuzhou-2024", json=ARTICLE,
                                        headers=WRITE), "/api/documents/{doc_id}", "put", 201)
    assert created["doc_id"] == "wuzhou-2024"
    check_error(openapi, client.put("/api/documents/wuzhou-2024",
                                    json=ARTICLE | {"doc_id": "other"}, headers=WRITE),
                "/api/documents/{doc_id}", "put", 400, "invalid_document")
    client.delete("/api/documents/wuzhou-2024", headers=WRITE)


@pytest.mark.parametrize(("body", "code"), [
    ({"text": "没有标题的正文。"}, "missing_field"),
    ({"title": "只有标题"}, "missing_field"),
    (ARTICLE | {"date": "2024-13-45"}, "invalid_document"),
    (ARTICLE | {"doc_id": "../etc/passwd"}, "invalid_document"),
    (ARTICLE | {"author": "某人"}, "unknown_field"),
    (ARTICLE | {"title": 42}, "invalid_document"),
])
def test_a_bad_document_is_refused_with_its_reason(client, openapi, body, code):
    check_error(openapi, client.post("/api/documents", json=body, headers=WRITE),
                "/api/documents", "post", 400, code)


def test_a_body_that_is_not_json_or_a_form_is_415(client, openapi):
    response = client.post("/api/documents", data="标题", content_type="text/plain",
                           headers=WRITE)
    check_error(openapi, response, "/api/documents", "post", 415, "unsupported_media_type")


UPLOADS = {
    "jdz-upload.txt": "景德镇陶瓷博览会开幕\n\n本届陶瓷博览会吸引了来自40个国家的展商。",
    "jdz-upload.md": "# 陶瓷博览会\n\n本届陶瓷博览会吸引了来自40个国家的展商。",
    "jdz-upload.html": "---\ntitle: 陶瓷博览会开幕\ndate: 2024-10-18\n---\n"
                       "<p>本届陶瓷博览会吸引了来自40个国家的展商。</p>",
}


@pytest.mark.parametrize("name", sorted(UPLOADS))
def test_an_uploaded_file_is_indexed_and_uploading_it_again_is_a_no_op(client, openapi, name):
    def upload():
        data = {"file": (io.BytesIO(UPLOADS[name].encode("utf-8")), name)}
        return client.post("/api/documents", data=data, headers=WRITE,
                           content_type="multipart/form-data")

    first = check(openapi, upload(), "/api/documents", "post", 201)
    assert first["doc_id"] == "jdz-upload" and first["status"] == "added"
    assert ask(client, "陶瓷博览会吸引了多少个国家的展商")[0] == "jdz-upload"
    assert check(openapi, upload(), "/api/documents", "post", 200)["status"] == "unchanged"
    client.delete("/api/documents/jdz-upload", headers=WRITE)


def test_an_unreadable_upload_is_refused_with_the_reason(client, openapi):
    data = {"file": (io.BytesIO(b"\x00\x01binary"), "scan.bin")}
    body = check_error(openapi, client.post("/api/documents", data=data, headers=WRITE,
                                            content_type="multipart/form-data"),
                       "/api/documents", "post", 400, "unreadable_file")
    assert "scan.bin" in body["error"]["message"]


def test_keys_from_a_key_file_and_keys_on_reads(tmp_path, openapi, monkeypatch):
    monkeypatch.delenv("QA_API_KEYS", raising=False)
    (tmp_path / "keys.txt").write_text("# newsroom keys\nfile-key\n", encoding="utf-8")
    retriever = tiny_retriever(tmp_path, server={"api_key_file": "keys.txt",
                                                 "keys_for_reads": True})
    try:
        client = create_app(retriever.config, retriever).test_client()
        check_error(openapi, client.get("/api/ask?q=宜宾"), "/api/ask", "get", 401,
                    "missing_key")
        ok = client.get("/api/ask?q=宜宾", headers={"Authorization": "Bearer file-key"})
        assert ok.status_code == 200
        assert client.get("/api/health").status_code == 200
    finally:
        retriever.engine.close()


FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ingest"


@pytest.mark.parametrize(("name", "documents"), [
    ("zhejiang_page.html", 1), ("hangzhou_report.pdf", 1), ("ningbo_port.docx", 1),
    ("guangdong_export.jsonl", None), ("chengyu_export.csv", None),
    ("jiangxi_gbk.txt", 1), ("fujian_headline.txt", 1),
])
def test_every_supported_format_can_be_uploaded(client, openapi, name, documents):
    def upload():
        data = {"file": (io.BytesIO((FIXTURES / name).read_bytes()), name)}
        return client.post("/api/documents", data=data, headers=WRITE,
                           content_type="multipart/form-data")

    first = check(openapi, upload(), "/api/documents", "post", 201)
    stored = first["documents"]
    assert stored and all(d["status"] == "added" and d["chunks"] >= 1 for d in stored)
    if documents is not None:
        assert len(stored) == documents
    else:
        assert len(stored) >= 2  # an export: one document per record
    again = check(openapi, upload(), "/api/documents", "post", 200)
    assert {d["status"] for d in again["documents"]} == {"unchanged"}
    for document in stored:
        assert client.get(f"/api/documents/{document['doc_id']}").status_code == 200
        client.delete(f"/api/documents/{document['doc_id']}", headers=WRITE)


def test_a_scanned_pdf_is_refused_with_its_reason(client, openapi):
    data = {"file": (io.BytesIO((FIXTURES / "scanned_notice.pdf").read_bytes()),
                     "scanned_notice.pdf")}
    body = check_error(openapi, client.post("/api/documents", data=data, headers=WRITE,
                                            content_type="multipart/form-data"),
                       "/api/documents", "post", 400, "unreadable_file")
    assert "text layer" in body["error"]["message"]
