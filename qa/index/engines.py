"""Which engine an index lives in, chosen from the config in one place.

`open_engine` opens the configured index, `writable_engine` opens it for changes
(creating it empty first when a model is at hand), `fresh_engine` fills a new one,
and `migrate` copies an index from one engine to the other without re-embedding.
Nothing else in the service asks which engine it talks to.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.config import ENGINES, Config
from qa.embedder import Embedder
from qa.errors import IndexMismatchError, QAError
from qa.index.engine import Change, Engine, PutDocument, PutFile
from qa.ingest.chunker import chunk_document, keyword_text
from qa.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

# Chunks copied per commit by `migrate`.
MIGRATE_BATCH = 512


def open_engine(config: Config) -> Engine:
    """The configured index, opened for reading and writing; raises IndexMissingError."""
    if config.engine == "milvus":
        from qa.index.milvus_engine import MilvusEngine

        return MilvusEngine(config)
    from qa.index.local_engine import LocalEngine

    return LocalEngine(config, config.index_dir)


@contextmanager
def writable_engine(config: Config,
                    embedder: Callable[[], Embedder] | None) -> Iterator[Engine]:
    """The configured index, created empty first if there is none (when a model is at
    hand to tell the dimension); closed (and the local vector cache saved) at the end."""
    if config.engine == "milvus":
        from qa.index.milvus_writers import writable_milvus

        with writable_milvus(config, embedder) as engine:
            yield engine
        return
    from qa.index.layout import IndexFolder
    from qa.index.local_engine import LocalEngine, create_index

    folder = IndexFolder(config.index_dir)
    with folder.writer_lock():
        folder.remove_leftovers()
        if embedder is not None and not folder.is_legacy() and folder.current_store() is None:
            create_index(config, folder.path, embedder().dimension)
    local = LocalEngine(config, folder.path)
    try:
        with local.keywords_deferred():
            yield local
        with folder.writer_lock():
            local.save_vector_cache()
    finally:
        local.close()


@contextmanager
def fresh_engine(config: Config, dimension: int,
                 wait_seconds: float = 30.0) -> Iterator[Engine]:
    """A new, empty index to fill in the block; it replaces the configured one when the
    block ends without an error, atomically (local: the CURRENT pointer; Milvus: the
    collection alias); until then the old index serves, and an interrupted fill leaves it
    untouched (its leftovers go at the next writer)."""
    if config.engine == "milvus":
        from qa.index.milvus_writers import fresh_milvus

        with fresh_milvus(config, dimension, wait_seconds) as engine:
            yield engine
        return
    from qa.index.layout import IndexFolder
    from qa.index.local_engine import LocalEngine, create_index

    folder = IndexFolder(config.index_dir)
    with folder.writer_lock(wait_seconds=wait_seconds):
        folder.remove_leftovers()
        store_dir = create_index(config, folder.path, dimension, make_live=False)
        local = LocalEngine(config, folder.path, store_dir=store_dir, locked=True)
        try:
            with local.keywords_deferred():
                yield local
            local.save_vector_cache()
        except BaseException:
            local.close()
            shutil.rmtree(store_dir, ignore_errors=True)
            raise
        local.close()
        folder.make_current(store_dir)
        folder.remove_leftovers()
        folder.remove_legacy_files()


def scratch_config(config: Config, folder: Path) -> Config:
    """The config pointed at a throw-away index in `folder` (for `qa eval`); a Milvus
    server gets a collection of its own, dropped by `discard_scratch`."""
    milvus = config.milvus
    if "://" in milvus.uri:
        milvus = dataclasses.replace(milvus, side_store=folder / "side.sqlite",
                                     collection=f"{milvus.collection}_eval_{secrets.token_hex(4)}")
    else:
        milvus = dataclasses.replace(milvus, uri=str(folder / "milvus.db"),
                                     side_store=folder / "side.sqlite")
    return config.replace(index_dir=folder / "index", milvus=milvus)


def discard_scratch(config: Config) -> None:
    """Drop a scratch collection on a Milvus server (files go with their folder)."""
    if config.engine == "milvus" and "://" in config.milvus.uri:
        from qa.index.milvus_writers import drop_milvus_index

        drop_milvus_index(config.milvus)


@dataclass
class MigrateReport:
    documents: int = 0
    chunks: int = 0
    files: int = 0


def migrate(config: Config, to: str, progress: Callable[[int, int], None] | None = None
            ) -> MigrateReport:
    """Copy the index of the other engine into `to`'s (replacing what is there), with the
    source's vectors: nothing is re-embedded. Chunks get new ids in the target; keyword
    tokens are made again from the stored text (as `qa index` makes them)."""
    if to not in ENGINES:
        raise QAError(f"unknown engine {to!r} (known: {', '.join(ENGINES)})")
    source_name = next(e for e in ENGINES if e != to)
    source = open_engine(config.replace(engine=source_name))
    target_config = config.replace(engine=to)
    tokenizer = Tokenizer(config.keywords.user_words)
    report = MigrateReport()
    try:
        with source.snapshot() as snapshot:
            total, _ = snapshot.counts()
            files = snapshot.files()
        with fresh_engine(target_config, source.dimension) as target:
            batch: list[Change] = []
            pending = 0
            offset = 0
            while True:
                with source.snapshot() as snapshot:
                    page = snapshot.documents(offset=offset, limit=100)
                    for document in page:
                        change = _copy(snapshot, document, config, tokenizer)
                        batch.append(change)
                        pending += len(change.chunks)
                        report.chunks += len(change.chunks)
                if not page:
                    break
                offset += len(page)
                report.documents += len(page)
                if pending >= MIGRATE_BATCH:
                    target.commit(batch)
                    batch, pending = [], 0
                if progress:
                    progress(report.documents, total)
            batch.extend(PutFile(record) for record in files.values())
            report.files = len(files)
            target.commit(batch)
    finally:
        source.close()
    return report


def _copy(snapshot, document, config: Config, tokenizer: Tokenizer) -> PutDocument:
    """A document as stored in the source, with its stored vectors."""
    change = stored_document(snapshot, document, config, tokenizer)
    if change is None:
        raise QAError(f"the stored chunks of {document.doc_id!r} differ from what the chunker "
                      "makes now; run `qa index --rebuild` instead of migrating")
    return change


def stored_document(snapshot, document, config: Config,
                    tokenizer: Tokenizer) -> PutDocument | None:
    """A stored document as a change with its stored vectors (nothing re-embedded), or
    None if the chunker now cuts it differently (its vectors no longer fit)."""
    info = snapshot.document_info(document.doc_id)
    # Both engines keep chunks in a SQLite table of the same shape (the store, or the
    # Milvus engine's side store).
    ids = [row[0] for row in snapshot.db.execute(
        "SELECT id FROM chunks WHERE doc_id = ? ORDER BY ordinal", (document.doc_id,))]
    chunks = chunk_document(document, config.chunking)
    stored = snapshot.chunks(ids)
    if len(chunks) != len(ids) or any(
            stored[i].text != c.text for i, c in zip(ids, chunks, strict=True)):
        return None
    tokens = [tokenizer.tokens(keyword_text(c, document.title, config.chunking))
              for c in chunks]
    return PutDocument(document, chunks, snapshot.vectors(ids), tokens, info[1])


@contextmanager
def previous_index(config: Config, fresh: Engine) -> Iterator[tuple[Any, bool] | None]:
    """Inside `fresh_engine`: a read snapshot of the index `fresh` is about to replace,
    and whether its vectors came from the configured model (None if there is none, or it
    cannot be read)."""
    if config.engine == "milvus":
        with fresh.previous() as previous:  # type: ignore[attr-defined]
            yield previous
        return
    from qa.index.layout import IndexFolder
    from qa.index.manifest import check_manifest, read_manifest
    from qa.index.store import STORE_FILE, StoreReader, connect

    try:
        folder = IndexFolder(config.index_dir)
        store = None if folder.is_legacy() else folder.current_store()
        manifest = read_manifest(store) if store else None
        db = connect(store / STORE_FILE, readonly=True) if store else None
    except QAError as exc:
        # A damaged index is what a rebuild is for; only carrying over is lost.
        logger.warning("not carrying documents over from the old index: %s", exc)
        store = db = None
    if db is None:
        yield None
        return
    try:
        check_manifest(manifest, config, dimension=None)
        same_model = True
    except IndexMismatchError:
        same_model = False

    class OldStore(StoreReader):
        def vectors(self, ids):  # type: ignore[override]
            return super().vectors(ids, int(manifest["dimension"]))

    try:
        db.execute("BEGIN")
        yield OldStore(db), same_model
    finally:
        db.close()
