"""Shared fixtures: a config on a temporary folder, the fake embedder, the shipped corpus,
a retriever over a tiny corpus."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.config import Config, config_from_mapping, resolve_paths
from tests.fakes import FakeEmbedder

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CORPUS = REPO / "corpus"


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def make_config(tmp_path: Path):
    """Build a Config in tmp_path from a mapping, like a config.yaml there would."""

    def make(**settings) -> Config:
        settings.setdefault("model", {}).setdefault("name", "fake-embedder")
        return resolve_paths(config_from_mapping(settings), tmp_path)

    return make


@pytest.fixture
def shipped_corpus(tmp_path: Path) -> Path:
    """A copy of the shipped articles in tmp_path/corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(SHIPPED_CORPUS, target, ignore=shutil.ignore_patterns(".*"))
    return target


@pytest.fixture
def empty_local_engine(make_config) -> Iterator:
    """A new, empty local index (small chunks) opened by the local engine."""
    from qa.index.layout import IndexFolder
    from qa.index.local_engine import LocalEngine, create_index

    config = make_config(chunking={"max_chars": 50, "min_chars": 0})
    with IndexFolder(config.index_dir).writer_lock():
        create_index(config, config.index_dir, FakeEmbedder().dimension)
    engine = LocalEngine(config)
    yield engine
    engine.close()


# Three short news articles: the tiny corpus of the retriever's tests.
ARTICLES = {
    "yibin.txt": "宜宾是四川南部的城市。燃面是当地的传统小吃。\n\n"
                 "白酒是宜宾的传统优势产业。2021年，宜宾白酒产业的营业收入突破1600亿元。"
                 "2022年重点项目共计22个。",
    "jingdezhen.txt": "景德镇陶瓷产业正在数字化转型。陶溪川直播基地今年3月成交额达4.35亿元。",
    "wuzhou.txt": "梧州市第十四次党代会提出加快培育数字经济，推动产业数字化。",
}


def write_corpus(folder: Path, articles: dict[str, str]) -> Path:
    """Write `articles` (file name -> text) into the new folder `folder`; returns it."""
    folder.mkdir()
    for name, text in articles.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def close_retriever(retriever) -> None:
    """Stop a retriever's background embedding workers, then close its engine."""
    retriever.background.close()
    retriever.engine.close()


@pytest.fixture
def make_retriever(tmp_path: Path, make_config) -> Iterator:
    """Make a retriever (fake embedder) over `articles` written to tmp_path/corpus and
    indexed with the given config settings; once a test (one corpus, one index). It is
    closed when the test ends, background workers and engine."""
    from qa.index.saved_index import build_index, open_index
    from qa.retriever import Retriever

    made = []

    def make(articles: dict[str, str] = ARTICLES, **settings) -> Retriever:
        corpus = write_corpus(tmp_path / "corpus", articles)
        config = make_config(**settings)
        embedder = FakeEmbedder()
        build_index(config, embedder, corpus, config.index_dir)
        made.append(Retriever(config, open_index(config), embedder))
        return made[-1]

    yield make
    for retriever in made:
        close_retriever(retriever)


@pytest.fixture
def retriever(make_retriever):
    """The retriever over ARTICLES in chunks of 10-60 characters (test modules that need
    another corpus define their own `retriever`)."""
    return make_retriever(chunking={"max_chars": 60, "min_chars": 10})


def model_cache() -> Path:
    """Where tests keep the built model: $QA_MODEL_CACHE, or the repo's .cache/models."""
    return Path(os.environ.get("QA_MODEL_CACHE") or REPO / ".cache" / "models")


@pytest.fixture(scope="session")
def real_retriever(tmp_path_factory) -> Iterator:
    """The real model and an index of the shipped corpus, built once per session."""
    from qa.embedder import SentenceTransformerEmbedder
    from qa.index.saved_index import build_index, open_index
    from qa.retriever import Retriever

    base = tmp_path_factory.mktemp("real")
    config = resolve_paths(config_from_mapping({
        "corpus_dir": str(SHIPPED_CORPUS),
        "index_dir": str(base / "index"),
        "model": {"cache_dir": str(model_cache())},
    }), base)
    embedder = SentenceTransformerEmbedder(config.model)
    build_index(config, embedder, config.corpus_dir, config.index_dir)
    retriever = Retriever(config, open_index(config), embedder)
    yield retriever
    retriever.engine.close()


FINISHED_MARKER = REPO / ".pytest-finished"


def pytest_sessionstart(session: pytest.Session) -> None:
    FINISHED_MARKER.unlink(missing_ok=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Written only when the run reaches its end: .ci/run checks it, because a test that
    ended the process early (os._exit(0) in code under test) would otherwise look like a
    pass."""
    FINISHED_MARKER.write_text(f"exit status {int(exitstatus)}, {session.testscollected} "
                               "tests collected\n", encoding="utf-8")
