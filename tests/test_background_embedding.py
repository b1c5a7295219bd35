"""The question's embedding on a background worker: bounded, inline when busy, and the
same Query and answers as the sequential path."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from qa.background_embedding import BackgroundWork
from qa.filters import NO_FILTERS

# The `retriever` fixture (tests/conftest.py) closes its background workers at the end.
QUESTIONS = ["宜宾白酒产业2021年的营业收入是多少？", "陶溪川直播基地成交额",
             "今天北京天气怎么样？", "梧州第十四次党代会提出了什么？"]


def test_a_call_runs_on_a_worker_thread_and_returns_its_value():
    work = BackgroundWork(workers=1)
    try:
        assert work.start(lambda: threading.current_thread().name).result().startswith(
            "qa-embed")
    finally:
        work.close()


def test_when_every_worker_is_busy_the_call_runs_on_the_callers_thread():
    work = BackgroundWork(workers=2)
    release = threading.Event()
    try:
        busy = [work.start(lambda: release.wait(5)) for _ in range(2)]
        here = work.start(lambda: threading.current_thread().name)
        assert here.result() == threading.current_thread().name
        release.set()
        assert all(p.result() for p in busy)
        # The workers are free again (a done callback returns each slot).
        for _ in range(20):
            name = work.start(lambda: threading.current_thread().name).result()
            assert name.startswith("qa-embed")
        assert len({t.name for t in threading.enumerate()
                    if t.name.startswith("qa-embed")}) <= 2
    finally:
        release.set()
        work.close()


def test_an_error_in_the_background_reaches_the_caller_and_frees_the_worker():
    work = BackgroundWork(workers=1)

    def fail():
        raise ValueError("model failed")

    try:
        with pytest.raises(ValueError, match="model failed"):
            work.start(fail).result()
        assert work.start(lambda: threading.current_thread().name).result().startswith(
            "qa-embed")
    finally:
        work.close()


def test_no_workers_means_every_call_runs_inline():
    work = BackgroundWork(workers=0)
    assert work.start(lambda: threading.current_thread().name).result() == \
        threading.current_thread().name


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_the_overlapped_path_gives_the_sequential_query_and_keyword_hits(retriever, mode):
    for question in QUESTIONS:
        sequential = retriever.prepare(question)
        with retriever.engine.snapshot() as snapshot:
            query, hits = retriever._prepare_and_search_keywords(
                question, mode, 50, snapshot, NO_FILTERS)
            expected_hits = (dict(snapshot.keyword_search(sequential.tokens, 50))
                             if mode != "vector" else None)
        assert query.text == sequential.text
        assert np.array_equal(query.vector, sequential.vector)
        assert query.tokens == sequential.tokens and query.idf == sequential.idf
        assert hits == expected_hits


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_answers_are_the_same_with_and_without_the_background_worker(retriever, mode):
    overlapped = [retriever.ask(q, top_k=3, mode=mode).to_dict() for q in QUESTIONS]
    retriever.background.close()
    retriever.background = BackgroundWork(workers=0)
    sequential = [retriever.ask(q, top_k=3, mode=mode).to_dict() for q in QUESTIONS]
    for answer in overlapped + sequential:
        del answer["took_ms"]
    assert overlapped == sequential


def test_the_keyword_search_runs_while_the_question_is_embedded(retriever):
    """The embedding waits for the keyword search to begin: it can only go on if the
    two overlap (sequentially, the keyword search would start after it)."""
    started = threading.Event()
    overlapped: list[bool] = []
    embed = retriever.embedder.embed_queries
    search = retriever._keyword_search

    def slow_embed(texts):
        overlapped.append(started.wait(5))
        return embed(texts)

    def keyword_search(*args):
        started.set()
        return search(*args)

    retriever.embedder.embed_queries = slow_embed
    retriever._keyword_search = keyword_search
    answer = retriever.ask("陶溪川直播基地成交额", top_k=1)
    assert overlapped == [True]
    assert answer.passages[0].citation.doc_id == "jingdezhen"
