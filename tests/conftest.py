"""Shared fixtures: a config on a temporary folder, the fake embedder, the shipped corpus."""

from __future__ import annotations

import shutil
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
