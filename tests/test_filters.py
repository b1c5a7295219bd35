"""Filters by source, document, category and date, applied inside both searches; sort by
date; the API's filters and /api/sources; the CLI's options."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from qa import cli
from qa.errors import InvalidQuestionError
from qa.filters import Filters, parse_filters
from qa.index import local_snapshot
from qa.index.saved_index import build_index_from_documents, open_index
from qa.ingest.document import Block, Document
from qa.retriever import Retriever
from qa.web import create_app
from tests.fakes import FakeEmbedder
from tests.test_api import check

QUESTION = "数字经济产业园引进企业"


def news(doc_id: str, source: str | None, date: str | None, text: str,
         category: str | None = None) -> Document:
    return Document(doc_id=doc_id, path=f"{doc_id}.txt", blocks=(Block(text),),
                    title=f"{source or '无来源'}报道", date=date, source=source,
                    category=category)


def archive() -> list[Document]:
    """60 strong matches from 大报, and a few weaker ones elsewhere: an unfiltered top 50
    holds none of the weaker ones, so a post-filter would find nothing."""
    documents = [news(f"big-{i:02d}", "大报", f"2024-01-{1 + i % 28:02d}",
                      f"数字经济产业园引进企业{i}家，数字经济产业园发展迅速，引进企业数量创新高。")
                 for i in range(60)]
    documents += [
        news("small-1", "小报", "2023-06-01", "县里的产业园今年也引进了几家企业。", "财经"),
        news("small-2", "小报", "2024-03-15", "产业园的企业招聘会吸引了很多年轻人。", "社会"),
        news("small-3", "小报", None, "没有日期的一篇：产业园里的企业食堂开张。", "财经"),
        news("other-1", "晚报", "2022-12-31", "晚报记者走访了产业园里的企业。"),
    ]
    return documents


@pytest.fixture(scope="module")
def retriever(tmp_path_factory):
    from qa.config import config_from_mapping, resolve_paths

    base = tmp_path_factory.mktemp("filters")
    config = resolve_paths(config_from_mapping({"model": {"name": "fake-embedder"}}), base)
    build_index_from_documents(config, FakeEmbedder(), archive(), config.index_dir)
    retriever = Retriever(config, open_index(config), FakeEmbedder())
    yield retriever
    retriever.engine.close()


def doc_ids(answer) -> list[str]:
    return [p.citation.doc_id for p in answer.passages]


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_a_filter_finds_its_documents_even_when_others_fill_the_unfiltered_top(retriever,
                                                                               mode):
    unfiltered = retriever.ask(QUESTION, top_k=50, mode=mode)
    assert not any(d.startswith("small") for d in doc_ids(unfiltered))
    answer = retriever.ask(QUESTION, top_k=5, mode=mode, filters=Filters(sources=("小报",)))
    assert sorted(doc_ids(answer)) == ["small-1", "small-2", "small-3"]
    assert answer.documents_matched == 3


@pytest.mark.parametrize("exact_limit", [4096, 0])
def test_both_vector_paths_agree(retriever, monkeypatch, exact_limit):
    monkeypatch.setattr(local_snapshot, "EXACT_FILTERED_SEARCH", exact_limit)
    answer = retriever.ask(QUESTION, top_k=5, mode="vector",
                           filters=Filters(sources=("小报", "晚报")))
    assert sorted(doc_ids(answer)) == ["other-1", "small-1", "small-2", "small-3"]


def test_dates_are_inclusive_and_undated_documents_fail_a_date_bound(retriever):
    answer = retriever.ask(QUESTION, top_k=10, filters=Filters(
        sources=("小报", "晚报"), date_from="2022-12-31", date_to="2024-03-15"))
    assert sorted(doc_ids(answer)) == ["other-1", "small-1", "small-2"]
    only_from = retriever.ask(QUESTION, top_k=10, filters=Filters(date_from="2024-03-01"))
    assert doc_ids(only_from) == ["small-2"]


def test_categories_and_documents_combine(retriever):
    answer = retriever.ask(QUESTION, top_k=10, filters=Filters(
        categories=("财经",), doc_ids=("small-3", "small-2", "big-01")))
    assert doc_ids(answer) == ["small-3"]
    nothing = retriever.ask(QUESTION, filters=Filters(sources=("不存在的报纸",)))
    assert nothing.passages == [] and nothing.documents_matched == 0
    backwards = retriever.ask(QUESTION, filters=parse_filters(
        {"date_from": "2024-05-01", "date_to": "2024-01-01"}))
    assert backwards.passages == [] and backwards.documents_matched == 0


def test_sort_by_date_orders_the_best_passages_newest_first(retriever):
    answer = retriever.ask(QUESTION, top_k=4, filters=Filters(sources=("小报", "晚报")),
                           sort="date")
    assert [p.citation.date for p in answer.passages] == [
        "2024-03-15", "2023-06-01", "2022-12-31", None]
    assert [p.rank for p in answer.passages] == [1, 2, 3, 4]


@pytest.mark.parametrize(("value", "message"), [
    ({"date_from": "2024-13-01"}, "date_from"),
    ({"sources": ["大报"]}, "unknown filter"),
    ({"source": [""]}, "non-empty"),
    ("大报", "must be an object"),
])
def test_bad_filters_are_refused_with_the_reason(value, message):
    with pytest.raises(InvalidQuestionError, match=message):
        parse_filters(value)


def test_the_api_takes_filters_in_the_body_and_the_query_and_lists_sources(retriever):
    client = create_app(retriever.config, retriever).test_client()
    openapi = client.get("/api/openapi.json").get_json()
    body = check(openapi, client.post("/api/ask", json={
        "question": QUESTION, "top_k": 5, "sort": "date",
        "filters": {"source": ["小报"], "date_from": "2023-01-01"}}), "/api/ask", "post")
    assert [p["citation"]["doc_id"] for p in body["passages"]] == ["small-2", "small-1"]
    assert body["filters"] == {"source": ["小报"], "date_from": "2023-01-01"}
    assert body["documents_matched"] == 2 and body["sort"] == "date"

    query = check(openapi, client.get("/api/ask", query_string=[
        ("q", QUESTION), ("source", "小报"), ("source", "晚报"), ("until", "2023-12-31")]),
        "/api/ask")
    assert sorted(p["citation"]["doc_id"] for p in query["passages"]) == ["other-1", "small-1"]

    bad = client.post("/api/ask", json={"question": QUESTION, "filters": {"date_to": "昨天"}})
    assert bad.status_code == 400 and "date_to" in bad.get_json()["error"]["message"]

    sources = check(openapi, client.get("/api/sources"), "/api/sources")
    assert sources["sources"][0] == {"name": "大报", "documents": 60}
    assert {s["name"] for s in sources["sources"]} == {"大报", "小报", "晚报"}
    assert (sources["date_from"], sources["date_to"]) == ("2022-12-31", "2024-03-15")
    assert sources["documents"] == 64


def test_the_cli_takes_filters(retriever, monkeypatch, tmp_path):
    monkeypatch.setattr(cli, "load_embedder", lambda config: FakeEmbedder())
    config = tmp_path / "config.yaml"
    config.write_text(f"index_dir: {retriever.config.index_dir}\nmodel:\n  name: fake-embedder\n",
                      encoding="utf-8")
    result = CliRunner().invoke(cli.main, ["ask", QUESTION, "--json", "--source", "小报",
                                           "--since", "2024-01-01", "--config", str(config)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert [p["citation"]["doc_id"] for p in answer["passages"]] == ["small-2"]
    human = CliRunner().invoke(cli.main, ["ask", QUESTION, "--source", "小报",
                                          "--config", str(config)])
    assert "只看：source=小报（3 篇文章）" in human.output
    bad = CliRunner().invoke(cli.main, ["ask", QUESTION, "--since", "2024-02-30",
                                        "--config", str(config)])
    assert bad.exit_code == 2 and "2024-02-30" in bad.output
