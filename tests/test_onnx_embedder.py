"""The ONNX Runtime backend: its export is atomic, its vectors match torch's, and
answering a question with it never imports torch."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from qa import onnx_embedder
from qa.config import ModelConfig
from tests.conftest import REPO, model_cache

TEXTS = [
    "2021年宜宾白酒产业的营业收入是多少？",
    "白酒是宜宾的传统优势产业。2021年，宜宾白酒产业的营业收入突破1600亿元，约占全国白酒行业的27%。",
    "景德镇的跨境电商综试区是什么时候获批的？",
    "How much revenue did the Yibin liquor industry make in 2021?",
    "Short.",
]


def _fake_model_folder(path):
    path.mkdir()
    (path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
    ]))
    (path / "1_Pooling").mkdir()
    (path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "mean"}))
    (path / "tokenizer.json").write_text("{}")
    return path


def test_an_interrupted_export_is_never_used_and_the_next_one_completes(tmp_path,
                                                                         monkeypatch):
    model = _fake_model_folder(tmp_path / "model")
    target = onnx_embedder.export_folder(tmp_path / "cache", model)

    def half_then_crash(source, output):
        output.write_bytes(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_embedder, "_export_fp32", lambda folder, output:
                        output.write_bytes(b"fp32"))
    monkeypatch.setattr(onnx_embedder, "_quantise_int8", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        onnx_embedder.ensure_onnx_export(model, target)
    assert not target.exists()
    assert not list(target.parent.glob(f".{target.name}.build-*"))

    monkeypatch.setattr(onnx_embedder, "_quantise_int8", lambda source, output:
                        output.write_bytes(b"int8"))
    assert onnx_embedder.ensure_onnx_export(model, target) == target
    assert (target / "model_int8.onnx").read_bytes() == b"int8"
    manifest = json.loads((target / "export.json").read_text())
    assert manifest["pooling"] == "mean" and manifest["max_seq_length"] == 512


def test_a_folder_without_the_manifest_is_rebuilt_not_used(tmp_path, monkeypatch):
    model = _fake_model_folder(tmp_path / "model")
    target = onnx_embedder.export_folder(tmp_path / "cache", model)
    target.mkdir(parents=True)
    (target / "model_int8.onnx").write_bytes(b"truncated")  # e.g. copied by hand, half-way
    monkeypatch.setattr(onnx_embedder, "_export_fp32", lambda f, o: o.write_bytes(b"fp32"))
    monkeypatch.setattr(onnx_embedder, "_quantise_int8", lambda s, o: o.write_bytes(b"int8"))
    onnx_embedder.ensure_onnx_export(model, target)
    assert (target / "model_int8.onnx").read_bytes() == b"int8"


def test_a_model_that_is_not_transformer_plus_pooling_is_refused(tmp_path):
    from qa.errors import QAError

    model = _fake_model_folder(tmp_path / "model")
    (model / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.CLIPModel"},
    ]))
    with pytest.raises(QAError, match="supports Transformer"):
        onnx_embedder.ensure_onnx_export(model, tmp_path / "out")


@pytest.mark.integration
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_onnx_vectors_match_torch_fp32(precision):
    from qa.embedder import SentenceTransformerEmbedder, create_embedder

    config = ModelConfig(cache_dir=model_cache())
    reference = SentenceTransformerEmbedder(dataclasses.replace(config, backend="torch"))
    onnx = create_embedder(dataclasses.replace(config, backend="onnx", precision=precision))
    assert onnx.dimension == reference.dimension == 384
    for embed in ("embed_queries", "embed_passages"):
        # One padded batch of mixed lengths, and each text alone.
        together = getattr(onnx, embed)(TEXTS)
        alone = np.vstack([getattr(onnx, embed)([t]) for t in TEXTS])
        expected = getattr(reference, embed)(TEXTS)
        floor = 0.9999 if precision == "fp32" else 0.98
        assert (together * expected).sum(axis=1).min() >= floor
        # int8's activation scales are per batch, so a text's vector depends slightly on
        # its batch-mates; fp32's does not.
        assert (together * alone).sum(axis=1).min() >= floor
        if precision == "fp32":
            assert np.allclose(together, alone, atol=1e-4)
        assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


@pytest.mark.integration
def test_qa_ask_with_the_onnx_backend_does_not_import_torch(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("宜宾白酒\n\n白酒是宜宾的传统优势产业。2021年，"
                                  "宜宾白酒产业的营业收入突破1600亿元，约占全国白酒行业的27%。\n",
                                  encoding="utf-8")
    (tmp_path / "config.yaml").write_text(textwrap.dedent(f"""\
        corpus_dir: {corpus}
        index_dir: {tmp_path / "index"}
        model:
          cache_dir: {model_cache()}
          backend: onnx
    """), encoding="utf-8")
    config = str(tmp_path / "config.yaml")
    # Indexing may export the model (which needs torch); asking must not.
    subprocess.run([sys.executable, "-m", "qa.cli", "index", "--config", config],
                   cwd=REPO, check=True, capture_output=True)
    probe = textwrap.dedent(f"""\
        import sys
        from click.testing import CliRunner
        from qa.cli import main
        result = CliRunner().invoke(main, ["ask", "宜宾白酒产业的营业收入", "--json",
                                           "--config", {config!r}])
        assert result.exit_code == 0, result.output
        assert "1600" in result.output, result.output
        heavy = sorted(m for m in sys.modules
                       if m.split(".")[0] in ("torch", "sentence_transformers", "transformers"))
        print(" ".join(heavy) or "none")
    """)
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "none"
