"""Text -> normalised vectors with ONNX Runtime: no torch at question time.

The sentence-transformers folder is exported once to ONNX (fp32, and a dynamically
quantised int8 copy) into `model.cache_dir`; the export needs torch, answering does not.
Only onnxruntime, the `tokenizers` library and numpy are imported to embed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qa.errors import QAError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

# Bump when the export or the quantisation changes, so old exports are not reused.
EXPORT_VERSION = 3
MANIFEST = "export.json"
FILES = {"fp32": "model.onnx", "int8": "model_int8.onnx"}
# Tokens per batch (rows x padded width), `batch_size` rows at most: ~8 news passages of
# ~130 characters. Small batches stay in the CPU's caches: on this machine int8 needed
# 43 ms of CPU per such passage in batches of 8 against 51 ms in batches of 32.
BATCH_TOKENS = 1024


def export_folder(cache_dir: Path, model_folder: Path) -> Path:
    """Where the ONNX export of a model folder lives (beside the built model)."""
    return cache_dir / f"{model_folder.name}-onnx-v{EXPORT_VERSION}"


def ensure_onnx_export(
    model_folder: Path, target: Path, status: Callable[[str], None] | None = None
) -> Path:
    """Export `model_folder` to ONNX fp32 + int8 in `target`, once.

    Built in a temporary folder beside `target` and renamed into place when complete,
    so an interrupted export is never used (its leftover `.<name>.build-*` folder is
    removed by a later export once it is an hour old).
    """
    if (target / MANIFEST).is_file():
        return target
    settings = _model_settings(model_folder)  # refuse an unsupported folder before work
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # not an export of ours: the manifest is written before the rename
        shutil.rmtree(target)
    for leftover in target.parent.glob(f".{target.name}.build-*"):
        if time.time() - leftover.stat().st_mtime > 3600:  # not a concurrent export's
            shutil.rmtree(leftover, ignore_errors=True)
    if status:
        status(f"exporting {model_folder.name} to ONNX (once; about a minute)")
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
    try:
        _export_fp32(model_folder, building / FILES["fp32"])
        _quantise_int8(building / FILES["fp32"], building / FILES["int8"])
        shutil.copy2(model_folder / "tokenizer.json", building / "tokenizer.json")
        manifest = {"export_version": EXPORT_VERSION, "source": str(model_folder),
                    **settings}
        (building / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        building.chmod(0o755)  # mkdtemp makes it private
        try:
            os.rename(building, target)
        except OSError:
            if not (target / MANIFEST).is_file():  # not a concurrent export that won
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def _model_settings(model_folder: Path) -> dict[str, object]:
    """Pooling and length limit from the sentence-transformers folder."""
    modules = json.loads((model_folder / "modules.json").read_text(encoding="utf-8"))
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or not set(kinds[2:]) <= {"Normalize"}:
        raise QAError(f"model.backend onnx supports Transformer + Pooling (+ Normalize) "
                      f"folders; {model_folder} has {', '.join(kinds)}")
    pooling_path = model_folder / modules[1]["path"] / "config.json"
    pooling = json.loads(pooling_path.read_text(encoding="utf-8"))
    mode = pooling.get("pooling_mode") or (
        "cls" if pooling.get("pooling_mode_cls_token") else "mean")
    if mode not in ("mean", "cls"):
        raise QAError(f"model.backend onnx supports mean or cls pooling, not {mode}")
    settings_path = model_folder / "sentence_bert_config.json"
    settings = (json.loads(settings_path.read_text(encoding="utf-8"))
                if settings_path.is_file() else {})
    return {"pooling": mode, "max_seq_length": int(settings.get("max_seq_length", 512))}


def _export_fp32(model_folder: Path, output: Path) -> None:
    # Imported here: only the one-off export needs torch.
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    model = AutoModel.from_pretrained(str(model_folder)).eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask
                              ).last_hidden_state

    # A padded example: traced on an all-ones mask the graph could drop the masking.
    input_ids = torch.tensor([[0, 100, 200, 300, 2], [0, 100, 2, 1, 1]])
    attention_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer's notes about Python booleans and index ops; checked by the tests
        # (padded batches agree with torch).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState(model), (input_ids, attention_mask), str(output),
            input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes,
                          "last_hidden_state": axes},
            opset_version=17, dynamo=False,
        )


def _quantise_int8(source: Path, output: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Signed 7-bit weights (reduce_range): avx2 without VNNI multiplies u8 activations by
    # s8 weights with vpmaddubsw, whose 16-bit sums saturate at full 8 bits; with 7 bits
    # they cannot, and the kernel needs a third less CPU per passage than u8 x u8 weights
    # (export v2) at the same cosine to fp32 (scripts/bench_embed.py). Per-channel keeps
    # cosine to fp32 >= 0.99. Quantising the 250k-row embedding table (Gather) too makes
    # the file 118 MB instead of 407 MB and loads in a third of the time, at equal cosine.
    quantize_logger = logging.getLogger()  # its "consider pre-processing" note goes to root
    level = quantize_logger.level
    quantize_logger.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(source), str(output), weight_type=QuantType.QInt8,
                         per_channel=True, reduce_range=True,
                         op_types_to_quantize=["MatMul", "Gather"])
    finally:
        quantize_logger.setLevel(level)


# Tokenizers loaded before a fork (`share_tokenizer`, called by `qa serve --workers`'
# supervisor), by export folder: an OnnxEmbedder over the same folder uses its one.
_SHARED_TOKENIZERS: dict[Path, Tokenizer] = {}


def load_tokenizer(folder: Path) -> Tokenizer:
    """The export's tokenizer, truncating to the model's length, never padding."""
    from tokenizers import Tokenizer

    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(int(manifest["max_seq_length"]))
    tokenizer.no_padding()
    return tokenizer


def share_tokenizer(folder: Path) -> None:
    """Load the export's tokenizer for every OnnxEmbedder made after it over `folder`, in
    this process and in the processes it forks (which then share its memory: the
    vocabulary is Rust memory that no Python reference count writes to).

    Starts no thread: the `tokenizers` library starts its thread pool on the first batch
    encoded, and a process that forks after using it turns the children's parallelism off.
    So nothing is encoded here.
    """
    folder = folder.resolve()
    if folder not in _SHARED_TOKENIZERS:
        _SHARED_TOKENIZERS[folder] = load_tokenizer(folder)


class OnnxEmbedder:
    """The exported model under ONNX Runtime, with the model's query/passage prompts."""

    def __init__(self, name: str, folder: Path, precision: str, threads: int,
                 batch_size: int, query_prompt: str, passage_prompt: str,
                 max_query_chars: int | None = None):
        import onnxruntime

        self.name = name
        # A question's cost grows with its length, its answer hardly (config.py).
        self._max_query_chars = max_query_chars
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        self._pooling = manifest["pooling"]
        self._batch_size = batch_size
        self._prompts = {"query": query_prompt, "passage": passage_prompt}
        shared = _SHARED_TOKENIZERS.get(folder.resolve())
        self._tokenizer = shared if shared is not None else load_tokenizer(folder)
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Spinning worker threads burn the other core while a server thread waits.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(folder / FILES[precision]), options, providers=["CPUExecutionProvider"])
        self._pad_id = self._tokenizer.token_to_id("<pad>") or 0
        self.dimension = int(self.embed_queries(["x"]).shape[1])

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions with the query prompt (their first `max_query_chars` only)."""
        limit = self._max_query_chars
        return self._embed([t[:limit] if limit else t for t in texts], "query", None)

    def embed_passages(self, texts: Sequence[str],
                       progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed passages with the passage prompt, in batches of similar length."""
        return self._embed(list(texts), "passage", progress)

    def _embed(self, texts: list[str], kind: str,
               progress: Callable[[int], None] | None) -> np.ndarray:
        if not texts:
            return np.zeros((0, getattr(self, "dimension", 0)), dtype=np.float32)
        prompt = self._prompts[kind]
        encodings = self._tokenizer.encode_batch([prompt + t for t in texts])
        # Similar lengths in a batch waste less padding; restore the order after.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        result: np.ndarray | None = None
        for batch in self._batches(order, [len(e.ids) for e in encodings]):
            vectors = self._run([encodings[i].ids for i in batch])
            if result is None:
                result = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            result[batch] = vectors
            if progress:
                progress(len(batch))
        assert result is not None
        return result

    def _batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """`order` (shortest first) cut into batches of at most `batch_size` rows and
        BATCH_TOKENS padded tokens (one row at least)."""
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            # Sorted by length: the row being added is the widest of its batch.
            if current and (len(current) == self._batch_size
                            or (len(current) + 1) * lengths[i] > BATCH_TOKENS):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _run(self, token_ids: list[list[int]]) -> np.ndarray:
        width = max(len(ids) for ids in token_ids)
        input_ids = np.full((len(token_ids), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(token_ids), width), dtype=np.int64)
        for row, ids in enumerate(token_ids):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        hidden = self._session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(pooled, dtype=np.float32)
