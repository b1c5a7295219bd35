"""Build an index folder from a corpus, atomically, and open it again with checks.

A folder holds `manifest.json`, `vectors.faiss` and `chunks.sqlite`. It is
built in a temporary sibling folder and renamed into place at the end, so an
interrupted build leaves the previous index (or none) and never a broken one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa import __version__
from qa.config import Config
from qa.embedder import Embedder
from qa.errors import IndexMismatchError, IndexMissingError, QAError
from qa.index.keywords import KeywordIndex
from qa.index.store import ChunkStore
from qa.index.vectors import VectorIndex
from qa.ingest.chunker import chunk_document, embedding_text
from qa.ingest.document import Document
from qa.ingest.loader import SkippedFile, load_corpus
from qa.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
VECTORS_FILE = "vectors.faiss"
STORE_FILE = "chunks.sqlite"

Progress = Callable[[int, int], None]
"""Called with (passages embedded so far, passages in all)."""


@dataclass(frozen=True)
class BuildReport:
    """What `build_index` did."""

    documents: int
    chunks: int
    seconds: float
    embed_seconds: float
    skipped: list[SkippedFile] = field(default_factory=list)


@dataclass
class OpenIndex:
    """A loaded index folder."""

    path: Path
    manifest: dict[str, Any]
    store: ChunkStore
    vectors: VectorIndex
    keywords: KeywordIndex
    tokenizer: Tokenizer

    def close(self) -> None:
        """Release the chunk store and the keyword index."""
        self.store.close()
        self.keywords.close()


def expected_manifest(config: Config, dimension: int) -> dict[str, Any]:
    """The manifest fields that must match between an index and the config using it."""
    return {
        "format": FORMAT_VERSION,
        "model": config.model.name,
        "dimension": dimension,
        "query_prompt": config.model.query_prompt,
        "passage_prompt": config.model.passage_prompt,
        "chunking": asdict(config.chunking),
        "keywords": {"user_words": list(config.keywords.user_words)},
    }


def build_index(
    config: Config,
    embedder: Embedder,
    corpus_dir: Path | None = None,
    index_dir: Path | None = None,
    progress: Progress | None = None,
) -> BuildReport:
    """Load, chunk and embed every document of the corpus into a fresh index folder."""
    corpus_dir = corpus_dir or config.corpus_dir
    if not corpus_dir.is_dir():
        raise QAError(f"corpus folder not found: {corpus_dir}")
    started = time.perf_counter()
    loaded = load_corpus(corpus_dir, config.ingest)
    if not loaded.documents:
        raise QAError(f"no readable documents in {corpus_dir}; the existing index is unchanged")
    return build_index_from_documents(
        config, embedder, loaded.documents, index_dir or config.index_dir,
        progress=progress, skipped=loaded.skipped, source=str(corpus_dir), started=started,
    )


def build_index_from_documents(
    config: Config,
    embedder: Embedder,
    documents: list[Document],
    index_dir: Path,
    progress: Progress | None = None,
    skipped: list[SkippedFile] | None = None,
    source: str = "",
    started: float | None = None,
) -> BuildReport:
    """Chunk and embed loaded documents into a fresh index folder, replacing any old one."""
    started = started if started is not None else time.perf_counter()
    skipped = list(skipped or [])
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.building-", dir=index_dir.parent))
    try:
        store = ChunkStore(work / STORE_FILE)
        keywords = KeywordIndex(work / STORE_FILE)
        tokenizer = Tokenizer(config.keywords.user_words)
        ids: list[int] = []
        texts: list[str] = []
        for document in documents:
            chunks = chunk_document(document, config.chunking)
            chunk_ids = store.add_document(document, chunks)
            chunk_texts = [embedding_text(c, document.title, config.chunking) for c in chunks]
            keywords.add(zip(chunk_ids, map(tokenizer.tokens, chunk_texts), strict=True))
            ids.extend(chunk_ids)
            texts.extend(chunk_texts)
        document_count, chunk_count = store.counts()
        store.close()
        keywords.close()

        embed_started = time.perf_counter()
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if progress:
                progress(done, len(texts))

        vectors = VectorIndex.empty(embedder.dimension)
        vectors.add(ids, embedder.embed_passages(texts, progress=advance))
        embed_seconds = time.perf_counter() - embed_started
        vectors.save(work / VECTORS_FILE)

        report = BuildReport(
            documents=document_count,
            chunks=chunk_count,
            seconds=time.perf_counter() - started,
            embed_seconds=embed_seconds,
            skipped=skipped,
        )
        manifest = expected_manifest(config, embedder.dimension) | {
            "qa_version": __version__,
            "documents": document_count,
            "chunks": chunk_count,
            "skipped": [asdict(s) for s in skipped],
            "source": source,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(report.seconds, 2),
        }
        (work / MANIFEST_FILE).write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        _swap_into_place(work, index_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    logger.info("built index at %s: %d documents, %d chunks", index_dir, document_count,
                chunk_count)
    return report


def _swap_into_place(work: Path, index_dir: Path) -> None:
    old = None
    if index_dir.exists():
        old = index_dir.with_name(f".{index_dir.name}.old-{os.getpid()}")
        os.replace(index_dir, old)
    os.replace(work, index_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The manifest of an index folder; says what to run if there is none."""
    path = index_dir / MANIFEST_FILE
    if not path.is_file():
        raise IndexMissingError(f"no index at {index_dir}; run `qa index` to build it")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexMismatchError(
            f"the index manifest {path} is unreadable ({exc}); run `qa index` to rebuild it"
        ) from None


def check_manifest(manifest: dict[str, Any], config: Config, dimension: int | None) -> None:
    """Refuse an index built with other settings, naming the difference."""
    wanted = expected_manifest(config, dimension if dimension else manifest.get("dimension", 0))
    for key, value in wanted.items():
        if manifest.get(key) != value:
            raise IndexMismatchError(
                f"the index was built with {key} = {manifest.get(key)!r}, but the config "
                f"has {value!r}; run `qa index` to rebuild it"
            )


def open_index(config: Config, index_dir: Path | None = None) -> OpenIndex:
    """Open an index folder after checking its manifest against the config."""
    index_dir = index_dir or config.index_dir
    manifest = read_manifest(index_dir)
    check_manifest(manifest, config, dimension=None)
    for name in (VECTORS_FILE, STORE_FILE):
        if not (index_dir / name).is_file():
            raise IndexMismatchError(
                f"the index at {index_dir} lacks {name}; run `qa index` to rebuild it"
            )
    vectors = VectorIndex.load(index_dir / VECTORS_FILE)
    if vectors.dimension != manifest.get("dimension"):
        raise IndexMismatchError(
            f"the index at {index_dir} is inconsistent; run `qa index` to rebuild it"
        )
    return OpenIndex(
        path=index_dir,
        manifest=manifest,
        store=ChunkStore(index_dir / STORE_FILE),
        vectors=vectors,
        keywords=KeywordIndex(index_dir / STORE_FILE),
        tokenizer=Tokenizer(config.keywords.user_words),
    )
