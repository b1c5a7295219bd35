"""What `qa serve --workers N` loads once, in the supervisor, before it forks the workers.

A forked process shares its parent's memory pages until one of them writes to a page, so
what every worker would load alike and then only read can be loaded once before the fork
and shared (README, "Several workers on one port", measured). Only what is safe to carry
across a fork:

- the model's tokenizer (the `tokenizers` library; its 250k-piece vocabulary is Rust
  memory, which no Python reference count writes to). Loading it starts no thread.
- jieba's dictionary (with the user words) and its part-of-speech tagger. These are
  Python dicts: looking a word up writes the reference count of its frequency, so some
  of their pages become each worker's own as it answers.
- the English bridge's tables (qa.bridge), if `keywords.english_bridge` is on: each
  worker would otherwise load its own copy on its first English question.

Not the ONNX Runtime session: importing onnxruntime starts threads, a process must not
fork with threads running, and ONNX Runtime's maintainers say sessions must be created
after a fork (one inherited across a fork can crash when it is destroyed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from qa.config import Config

logger = logging.getLogger(__name__)

MODEL_TOKENIZER = "the model's tokenizer"
KEYWORD_DICTIONARY = "jieba's dictionary"
ENGLISH_BRIDGE = "the English bridge"
# What `load_before_fork` loads by default (scripts/measure_worker_memory.py measures
# each part by replacing this).
PARTS: tuple[str, ...] = (MODEL_TOKENIZER, KEYWORD_DICTIONARY, ENGLISH_BRIDGE)


def load_before_fork(config: Config, parts: Sequence[str] | None = None) -> list[str]:
    """Load the shareable parts of the app in this process, for the processes it forks
    next; returns what was loaded. Loading nothing is always safe: each worker then loads
    its own."""
    loaded = []
    for part in PARTS if parts is None else parts:
        if part == MODEL_TOKENIZER:
            from qa.embedder import built_onnx_export
            from qa.onnx_embedder import share_tokenizer

            folder = built_onnx_export(config.model)
            if folder is None:  # another backend, or not exported yet: the workers load it
                continue
            share_tokenizer(folder)
        elif part == KEYWORD_DICTIONARY:
            from qa.tokenizer import share_dictionary

            share_dictionary(config.keywords.user_words)
        elif part == ENGLISH_BRIDGE:
            if not config.keywords.english_bridge:
                continue
            from qa.bridge import EnglishBridge

            # Kept by qa.bridge for every bridge this process (or a child) makes.
            EnglishBridge(config.model.cache_dir).tables()
        else:
            raise ValueError(f"unknown part {part!r}")
        loaded.append(part)
    return loaded
