"""Shared fixtures: a config on a temporary folder, the fake embedder, the shipped corpus."""

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
