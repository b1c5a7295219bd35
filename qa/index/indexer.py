"""Keep an index in step with its sources: sync a corpus folder, add files or documents,
remove documents. Streams in batches: each batch is embedded and committed on its own,
so memory stays bounded and an interrupted run keeps what it committed (a run started
again skips the files and documents already committed). A full batch is tokenised for
the keyword index in a worker process while the model embeds it (qa.index.token_worker)."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.config import Config
from qa.embedder import Embedder
from qa.index.engine import Change, Engine, PutDocument, PutFile, RemoveDocument, RemoveFile
from qa.index.index_report import IndexReport, Progress
from qa.index.store import API_ORIGIN, FileRecord, content_hash
from qa.index.token_worker import TokenWorker
from qa.ingest.chunker import chunk_document, embedding_text, keyword_text
from qa.ingest.document import Document
from qa.ingest.loader import LoadError, SkippedFile, corpus_files, load_file
from qa.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

# Passages embedded and committed together: large enough to keep the model busy,
# small enough that an interruption loses little.
BATCH_PASSAGES = 256


@dataclass
class _Pending:
    document: Document
    chunks: list
    texts: list[str]  # what the model embeds
    keyword_texts: list[str]  # what the keyword index tokenises (chunking.keyword_title)
    tokens: list[list[str]] | None  # None until the batch is tokenised
    origin: str
    status: str  # "added" or "replaced"


class Indexer:
    """Writes documents into an engine; the model is loaded only when something must be
    embedded, so a sync of an unchanged corpus costs no model start-up."""

    def __init__(self, config: Config, engine: Engine, embedder: Callable[[], Embedder],
                 progress: Callable[[Progress], None] | None = None,
                 tokenizer: Tokenizer | None = None, token_workers: int = 1):
        self.config = config
        self.engine = engine
        self._make_embedder = embedder
        self._embedder: Embedder | None = None
        # The server passes its own, loaded once: jieba's dictionary takes a second.
        self.tokenizer = tokenizer or Tokenizer(config.keywords.user_words)
        # Full batches are tokenised there (the same user words, so the same tokens);
        # token_workers=0 tokenises everything here, document by document.
        self._worker = TokenWorker(self.tokenizer.user_words) if token_workers else None
        self._progress = progress
        self._state = Progress()
        self._pending: list[_Pending] = []
        self._pending_changes: list[Change] = []
        self._report = IndexReport()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._make_embedder()
        return self._embedder

    # -- public operations ---------------------------------------------------------

    @property
    def report(self) -> IndexReport:
        """What the last operation did."""
        return self._report

    def sync(self, corpus_dir: Path) -> IndexReport:
        """Make the index hold exactly the documents of `corpus_dir` (and those added
        through the API or from elsewhere): add new files, replace changed ones,
        remove the documents of deleted ones."""
        started = time.perf_counter()
        corpus_dir = corpus_dir.resolve()
        files, skipped = corpus_files(corpus_dir, self.config.ingest)
        self._report = IndexReport(skipped=list(skipped))
        present = {str(p.resolve()) for p in files}
        with self.engine.snapshot() as snapshot:
            origins = snapshot.origins()
            known = snapshot.files()
        inside = str(corpus_dir) + os.sep
        for origin in sorted(set(origins) | set(known)):
            if origin.startswith(inside) and origin not in present:
                self._queue_removal(origin, origins.get(origin, []))
        try:
            self._flush()
            self._load_files(files, corpus_dir, origins, known, present)
        finally:
            self._stop_worker()
        self._report.seconds = time.perf_counter() - started
        return self._report

    def add_paths(self, paths: Iterable[Path]) -> IndexReport:
        """Add or replace the documents of these files and folders."""
        started = time.perf_counter()
        self._report = IndexReport()
        corpus_dir = self.config.corpus_dir.resolve()
        with self.engine.snapshot() as snapshot:
            origins = snapshot.origins()
            known = snapshot.files()
        for path in paths:
            path = Path(path).resolve()
            if path.is_dir():
                files, skipped = corpus_files(path, self.config.ingest)
                self._report.skipped.extend(skipped)
            elif path.is_file():
                files = [path]
            else:
                self._report.skipped.append(SkippedFile(str(path), "no such file or folder"))
                continue
            root = corpus_dir if path.is_relative_to(corpus_dir) else (
                path if path.is_dir() else path.parent)
            try:
                self._load_files(files, root, origins, known,
                                 {str(f.resolve()) for f in files})
            except BaseException:
                self._stop_worker()
                raise
        self._stop_worker()
        self._report.seconds = time.perf_counter() - started
        return self._report

    def put_document(self, document: Document, origin: str = API_ORIGIN) -> tuple[str, int]:
        """Add or replace one document; returns ("added" | "replaced" | "unchanged",
        its chunk count)."""
        self._report = IndexReport()
        with self.engine.snapshot() as snapshot:
            info = snapshot.document_info(document.doc_id)
            if info == (content_hash(document), origin):
                return "unchanged", snapshot.chunk_count(document.doc_id)
        self._queue_document(document, origin, "added" if info is None else "replaced")
        count = len(self._pending[-1].chunks)
        try:
            self._flush()
        finally:
            self._stop_worker()  # a document of 256 passages or more went to the worker
        return ("added" if info is None else "replaced"), count

    def put_documents(self, documents: Iterable[Document], origin: str = API_ORIGIN) -> None:
        """Add or replace many documents, in batches, without comparing hashes (a fresh
        index)."""
        try:
            for document in documents:
                self._queue_document(document, origin, "added")
            self._flush()
        finally:
            self._stop_worker()

    def remove(self, doc_ids: Iterable[str]) -> dict[str, bool]:
        """Remove documents by id; returns which were found. A removed document's file
        record is forgotten too, so a later sync looks at that file again."""
        doc_ids = list(dict.fromkeys(doc_ids))
        with self.engine.snapshot() as snapshot:
            origins = {d: info[1] for d in doc_ids if (info := snapshot.document_info(d))}
        changes: list[Change] = [RemoveDocument(d) for d in doc_ids]
        changes += [RemoveFile(o) for o in set(origins.values()) if o != API_ORIGIN]
        result = self.engine.commit(changes)
        return {d: result.removed.get(d, False) for d in doc_ids}

    # -- the work ----------------------------------------------------------------------

    def _load_files(self, files: list[Path], root: Path, origins: dict[str, list[str]],
                    known: dict[str, FileRecord], present: set[str]) -> None:
        owner = {doc_id: origin for origin, ids in origins.items() for doc_id in ids}
        changed: list[tuple[Path, os.stat_result]] = []
        for path in files:
            try:
                stat = path.stat()
            except OSError as exc:
                self._skip(path, f"cannot read file: {exc.strerror or exc}")
                continue
            record = known.get(str(path.resolve()))
            if record and (record.size, record.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
                self._report.unchanged += len(origins.get(record.path, []))
            else:
                changed.append((path, stat))
        self._state.bytes_total += sum(stat.st_size for _, stat in changed)
        self._tell()
        loaded_here: dict[str, str] = {}
        for path, stat in changed:
            done = self._state.bytes_done + stat.st_size
            self._load_one(path, stat, root, known, origins, owner, present, loaded_here)
            self._state.bytes_done = done
            self._tell()
        self._flush()

    def _load_one(self, path: Path, stat: os.stat_result, root: Path,
                  known: dict[str, FileRecord], origins: dict[str, list[str]],
                  owner: dict[str, str], present: set[str], loaded_here: dict[str, str]) -> None:
        origin = str(path.resolve())
        try:
            data = path.read_bytes()
        except OSError as exc:
            self._skip(path, f"cannot read file: {exc.strerror or exc}")
            return
        record = FileRecord(origin, stat.st_size, stat.st_mtime_ns,
                            hashlib.sha256(data).hexdigest())
        before = known.get(origin)
        if before is not None and before.sha256 == record.sha256:
            # Touched but not changed: remember the new time, embed nothing.
            self._report.unchanged += len(origins.get(origin, []))
            self._pending_changes.append(PutFile(record))
            return
        started = time.perf_counter()
        try:
            documents = load_file(path, root, self.config.ingest)
        except LoadError as exc:
            self._skip(path, str(exc))
            documents = []
        except Exception as exc:  # a parser bug on one file must not stop the run
            logger.exception("unexpected error loading %s", path)
            self._skip(path, f"unexpected error: {type(exc).__name__}: {exc}")
            documents = []
        self._report.add_time("load", time.perf_counter() - started)
        if documents:
            kind = path.suffix.lower() or "(no extension)"
            self._report.loaded[kind] = self._report.loaded.get(kind, 0) + len(documents)
        produced = set()
        before_bytes = self._state.bytes_done
        for number, document in enumerate(documents, start=1):
            # A large export moves the bar record by record, not only at its end.
            self._state.bytes_done = before_bytes + stat.st_size * number // len(documents)
            first = loaded_here.get(document.doc_id)
            holder = owner.get(document.doc_id)
            if first is None and holder not in (None, origin, API_ORIGIN) and holder in present:
                first = holder
            if first is not None and first != origin:
                self._skip(path, f"duplicate doc_id {document.doc_id!r} "
                                 f"(already loaded from {Path(first).name})")
                continue
            loaded_here[document.doc_id] = origin
            produced.add(document.doc_id)
            self._consider(document, origin)
        for gone in sorted(set(origins.get(origin, [])) - produced):
            self._pending_changes.append(RemoveDocument(gone))
            self._report.removed.append(gone)
        # Written with (or after) the file's last document: a crash before it means
        # the next run looks at the file again.
        if documents:
            self._pending_changes.append(PutFile(record))

    def _consider(self, document: Document, origin: str) -> None:
        with self.engine.snapshot() as snapshot:
            info = snapshot.document_info(document.doc_id)
        if info == (content_hash(document), origin):
            self._report.unchanged += 1
            return
        self._queue_document(document, origin, "added" if info is None else "replaced")

    def _queue_document(self, document: Document, origin: str, status: str) -> None:
        started = time.perf_counter()
        chunks = chunk_document(document, self.config.chunking)
        texts = [embedding_text(c, document.title, self.config.chunking) for c in chunks]
        keyword_texts = [keyword_text(c, document.title, self.config.chunking) for c in chunks]
        self._report.add_time("load", time.perf_counter() - started)
        tokens = None if self._worker else self._tokens(keyword_texts)
        self._pending.append(
            _Pending(document, chunks, texts, keyword_texts, tokens, origin, status))
        if sum(len(p.texts) for p in self._pending) >= BATCH_PASSAGES:
            self._flush()

    def _queue_removal(self, origin: str, doc_ids: list[str]) -> None:
        for doc_id in doc_ids:
            self._pending_changes.append(RemoveDocument(doc_id))
            self._report.removed.append(doc_id)
        self._pending_changes.append(RemoveFile(origin))

    def _flush(self) -> None:
        """Embed the queued documents and commit them with the queued file changes."""
        pending, self._pending = self._pending, []
        changes, self._pending_changes = self._pending_changes, []
        texts = [t for p in pending for t in p.texts]
        untokenised = [p for p in pending if p.tokens is None]
        # A full batch is tokenised by the worker while the model embeds it; a small
        # write (one document through the API) is not worth a process.
        future = None
        if untokenised and len(texts) >= BATCH_PASSAGES and self._worker:
            future = self._worker.submit([t for p in untokenised for t in p.keyword_texts])
        vectors = np.zeros((0, 0), dtype=np.float32)
        if texts:
            started = time.perf_counter()
            vectors = self.embedder.embed_passages(texts)
            self._report.embed_seconds += time.perf_counter() - started
            self._report.add_time("embed", time.perf_counter() - started)
        if untokenised:
            if future and self._worker:
                started = time.perf_counter()  # what is left after embedding: the wait
                tokens = self._worker.result(future)
                self._report.add_time("tokenize", time.perf_counter() - started)
            else:
                tokens = self._tokens([t for p in untokenised for t in p.keyword_texts])
            position = 0
            for p in untokenised:
                p.tokens = tokens[position:position + len(p.texts)]
                position += len(p.texts)
        puts: list[Change] = []
        position = 0
        for p in pending:
            count = len(p.texts)
            assert p.tokens is not None
            puts.append(PutDocument(p.document, p.chunks, vectors[position:position + count],
                                    p.tokens, p.origin))
            position += count
        if not puts and not changes:
            return
        started = time.perf_counter()
        self.engine.commit(puts + changes)
        self._report.add_time("store", time.perf_counter() - started)
        for p in pending:
            (self._report.added if p.status == "added" else self._report.replaced).append(
                p.document.doc_id)
        self._report.passages += len(texts)
        self._state.documents += len(pending)
        self._state.passages += len(texts)
        self._tell()

    def _tokens(self, texts: list[str]) -> list[list[str]]:
        started = time.perf_counter()
        tokens = [self.tokenizer.tokens(t) for t in texts]
        self._report.add_time("tokenize", time.perf_counter() - started)
        return tokens

    def _stop_worker(self) -> None:
        if self._worker:
            self._worker.close()

    def _skip(self, path: Path, reason: str) -> None:
        logger.info("skipping %s: %s", path, reason)
        self._report.skipped.append(SkippedFile(str(path), reason))

    def _tell(self) -> None:
        if self._progress:
            self._progress(self._state)
