"""Building, syncing and opening an index folder, safely at every instant.

`sync_index` brings the live store in step with a corpus folder in place, batch by
batch (each batch one transaction), creating an empty live store first if there is
none. `rebuild` fills a new store folder while the old one keeps serving, and makes
it live with one atomic rename. The writer lock keeps writers apart; readers never
wait for it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from qa.config import Config
from qa.embedder import Embedder
from qa.errors import QAError
from qa.index.engine import Change, Engine
from qa.index.engines import (
    MIGRATE_BATCH,
    fresh_engine,
    open_engine,
    previous_index,
    stored_document,
    writable_engine,
)
from qa.index.index_report import IndexReport, Progress
from qa.index.indexer import Indexer
from qa.index.layout import IndexFolder
from qa.index.manifest import check_manifest, read_manifest  # noqa: F401 - re-exported
from qa.index.store import API_ORIGIN
from qa.ingest.document import Document

logger = logging.getLogger(__name__)

EmbedderFactory = Callable[[], Embedder]


def open_index(config: Config, index_dir: Path | None = None) -> Engine:
    """Open the configured index (engine chosen by the config) after checking its
    manifest against the config."""
    return open_engine(config.replace(index_dir=index_dir) if index_dir else config)


def sync_index(
    config: Config,
    embedder: EmbedderFactory,
    corpus_dir: Path | None = None,
    index_dir: Path | None = None,
    rebuild: bool = False,
    progress: Callable[[Progress], None] | None = None,
) -> IndexReport:
    """Sync the index with the corpus folder (or rebuild it from scratch)."""
    corpus_dir = (corpus_dir or config.corpus_dir).resolve()
    folder = IndexFolder(index_dir or config.index_dir)
    if not corpus_dir.is_dir():
        raise QAError(f"corpus folder not found: {corpus_dir}; create it, or set corpus_dir "
                      "in config.yaml (or pass --corpus)")
    if not os.access(corpus_dir, os.R_OK | os.X_OK):
        raise QAError(f"cannot read the corpus folder {corpus_dir} (permission denied); "
                      "check its permissions")
    embedder = _once(embedder)
    config = config.replace(index_dir=folder.path)
    if config.engine == "local" and folder.is_legacy():
        logger.warning("converting the old index format at %s", folder.path)
        rebuild = True
    if rebuild:
        return _rebuild(config, embedder, folder, corpus_dir, progress)
    with writable_engine(config, embedder) as engine:
        _refuse_emptying(engine, corpus_dir, config)
        return Indexer(config, engine, embedder, progress).sync(corpus_dir)


def _refuse_emptying(engine: Engine, corpus_dir: Path, config: Config) -> None:
    """An empty corpus folder (an unmounted drive, a wrong path) must not wipe the index."""
    from qa.ingest.loader import corpus_files

    files, _ = corpus_files(corpus_dir, config.ingest)
    if files:
        return
    inside = str(corpus_dir) + "/"
    with engine.snapshot() as snapshot:
        held = sum(len(ids) for origin, ids in snapshot.origins().items()
                   if origin.startswith(inside))
    if held:
        raise QAError(
            f"the corpus folder {corpus_dir} holds no readable files, but the index has "
            f"{held} documents from it; nothing was removed (use `qa remove` or "
            "`qa index --rebuild` if that is what you want)")


def _rebuild(config: Config, embedder: EmbedderFactory, folder: IndexFolder,
             corpus_dir: Path, progress: Callable[[Progress], None] | None) -> IndexReport:
    """A new index of the corpus, live once complete; the documents no corpus file gives
    (sent through the API, or added from elsewhere) are carried over from the old one."""
    with fresh_engine(config, embedder().dimension, wait_seconds=5.0) as engine:
        indexer = Indexer(config, engine, embedder, progress)
        report = indexer.sync(corpus_dir)
        # Under the rebuild's writer lock the old index is still the live one.
        with previous_index(config, engine) as previous:
            report.added.extend(_carry_over(previous, corpus_dir, indexer, config))
    return report


def _carry_over(previous, corpus_dir: Path, indexer: Indexer, config: Config) -> list[str]:
    """Copy the old index's documents that no corpus file gives into the new one: with
    their stored vectors when the index settings (model, prompts, chunking, user words;
    the manifest) and the chunks are the same (nothing re-embedded), else re-chunked and
    re-embedded."""
    if previous is None:
        return []
    reader, same_model = previous
    try:
        origins = reader.origins()
    except sqlite3.DatabaseError as exc:
        logger.warning("not carrying documents over from the damaged old index: %s", exc)
        return []
    inside = str(corpus_dir) + "/"
    tokenizer = indexer.tokenizer
    carried: list[str] = []
    batch: list[Change] = []
    for origin, doc_ids in sorted(origins.items()):
        if origin.startswith(inside):
            continue
        for doc_id in doc_ids:
            document = reader.document(doc_id)
            change = stored_document(reader, document, config, tokenizer) if same_model \
                else None
            if change is not None:
                batch.append(change)
                carried.append(doc_id)
                if sum(len(c.chunks) for c in batch) >= MIGRATE_BATCH:
                    indexer.engine.commit(batch)
                    batch = []
                continue
            status, _ = indexer.put_document(document, origin=origin or API_ORIGIN)
            if status != "unchanged":
                carried.append(doc_id)
    indexer.engine.commit(batch)
    return carried


def build_index_from_documents(
    config: Config,
    embedder: Embedder,
    documents: list[Document],
    index_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    source: str = "",
) -> IndexReport:
    """A fresh index of these documents in `index_dir`, replacing any index there
    (used by `qa eval` and the benchmark scripts)."""
    total = len(documents)

    def tell(state: Progress) -> None:
        if progress:
            progress(state.documents, total)

    with fresh_engine(config.replace(index_dir=index_dir), embedder.dimension) as engine:
        indexer = Indexer(config, engine, lambda: embedder, tell)
        indexer.put_documents(documents, origin=source or API_ORIGIN)
    return indexer.report


def _once(factory: EmbedderFactory) -> EmbedderFactory:
    """The factory, called at most once."""
    made: list[Embedder] = []

    def get() -> Embedder:
        if not made:
            made.append(factory())
        return made[0]

    return get


def build_index(config: Config, embedder: Embedder, corpus_dir: Path | None = None,
                index_dir: Path | None = None,
                progress: Callable[[Progress], None] | None = None) -> IndexReport:
    """Sync an index of the corpus with a model already loaded (tests, scripts)."""
    return sync_index(config, lambda: embedder, corpus_dir, index_dir, progress=progress)
