"""config.yaml: the shipped file loads; unknown keys and bad values are named."""

from __future__ import annotations

import dataclasses

import pytest

from qa.config import load_config
from qa.errors import ConfigError
from tests.conftest import REPO


def test_the_shipped_config_loads_with_paths_resolved_against_its_folder():
    config = load_config(REPO / "config.yaml")
    assert config.corpus_dir == REPO / "corpus"
    assert config.index_dir.is_relative_to(REPO / "embeddings")
    assert config.model.query_prompt == "query: "
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.model.batch_size = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("modle:\n  name: x\n", "unknown key 'modle'"),
        ("chunking:\n  max_char: 10\n", "unknown key 'max_char'"),
        ("chunking:\n  max_chars: ten\n", "expected an integer"),
        ("model:\n  backend: tensorflow\n", "backend must be one of torch, onnx"),
        ("model:\n  precision: int4\n", "precision must be one of int8, fp32"),
        ("index:\n  keyword_backend: lucene\n", "keyword_backend must be one of fts5, tantivy"),
        ("model:\n  threads: -1\n", "threads must be between 0"),
        ("model:\n  threads: two\n", "expected an integer"),
        ("model:\n  thread: 2\n", "unknown key 'thread'"),
        ("chunking:\n  max_chars: 0\n", "max_chars must be at least 1"),
        ("retrieval:\n  top_k: 60\n  max_top_k: 50\n", "top_k must not exceed"),
        ("server: [1, 2]\n", "expected a mapping"),
        ("model: {name: [\n", "not valid YAML"),
    ],
)
def test_bad_settings_are_rejected_with_a_message_naming_them(tmp_path, text, message):
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_missing_or_undecodable_config_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "bad.yaml")
