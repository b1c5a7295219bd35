"""BM25 keyword search with tantivy: an index derived from the SQLite store.

FTS5 scores every row a query matches before it applies LIMIT, so a question with a
common word costs time in proportion to the archive (README, "Speed: keyword search at
a million chunks"); tantivy finds the top k with block-max WAND and reads its postings
from memory-mapped files. It indexes the same jieba tokens the store keeps in its FTS5
table (whitespace-joined), so both backends see the same terms.

The store stays the source of truth. This index records the store generation it holds
in a marker document (chunk id 0; SQLite's AUTOINCREMENT ids start at 1) written in the
same tantivy commit as the changes. `catch_up` brings it to the store's generation from
`removed_chunks` and `chunks.generation`, the way the FAISS cache is brought up to date:
a writer calls it after each SQLite commit, and the engine calls it on open, so a crash
between the two commits leaves an index one generation behind, which the next open
finds (its marker is older than the store) and repairs. A missing, unreadable or
newer-than-the-store index is rebuilt from the store.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import tantivy

from qa.index.layout import hold_lock
from qa.index.store import StoreReader

logger = logging.getLogger(__name__)

FOLDER = "keywords.tantivy"
LOCK_FILE = "keywords.tantivy.lock"
ANALYZER = "whitespace"
MARKER_ID = 0
# Writer memory: tantivy splits it between its threads and flushes a segment when full.
WRITER_HEAP = 128_000_000
BATCH = 4096


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    # Term frequencies without positions: BM25 needs no phrases.
    builder.add_text_field("terms", tokenizer_name=ANALYZER, index_option="freq")
    builder.add_unsigned_field("chunk_id", indexed=True, fast=True)
    builder.add_unsigned_field("generation", stored=True)
    return builder.build()


def _document(chunk_id: int, terms: str | None = None,
              generation: int | None = None) -> tantivy.Document:
    document = tantivy.Document()
    document.add_unsigned("chunk_id", chunk_id)
    if terms is not None:
        document.add_text("terms", terms)
    if generation is not None:
        document.add_unsigned("generation", generation)
    return document


def _analyzer() -> tantivy.TextAnalyzer:
    # The tokens are already folded (lower case, simplified): split on spaces only.
    return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()


@contextmanager
def _writing(index: tantivy.Index, heap: int) -> Iterator[tantivy.IndexWriter]:
    """A writer for the block; dropped at the end (which releases tantivy's own lock),
    its uncommitted changes discarded if the block fails."""
    writer = index.writer(heap_size=heap, num_threads=1)
    try:
        yield writer
    except BaseException:
        writer.rollback()
        raise
    finally:
        # Finishes merges and drops the writer.
        writer.wait_merging_threads()


class TantivyKeywords:
    """The keyword index of one store folder: search, document frequencies, catch-up."""

    may_lag = True
    """Its hits may include chunks removed since its last catch-up: check them."""

    def __init__(self, store_dir: Path):
        self.path = store_dir / FOLDER
        self._lock_path = store_dir / LOCK_FILE
        self._schema = _schema()
        self._index: tantivy.Index | None = None
        self._open_lock = threading.Lock()

    # -- opening and catching up ---------------------------------------------------

    def _opened(self) -> tantivy.Index | None:
        """The index as last committed, or None if there is none readable."""
        with self._open_lock:
            if self._index is None and (self.path / "meta.json").is_file():
                try:
                    index = tantivy.Index.open(str(self.path))
                    index.register_tokenizer(ANALYZER, _analyzer())
                    index.config_reader(reload_policy="Manual")
                    self._index = index
                except (ValueError, OSError) as exc:
                    logger.warning("the keyword index %s is unreadable (%s)", self.path, exc)
            return self._index

    def generation(self) -> int | None:
        """The store generation this index holds, or None if it is missing or unreadable."""
        index = self._opened()
        if index is None:
            return None
        try:
            searcher = index.searcher()
            query = tantivy.Query.term_query(self._schema, "chunk_id", MARKER_ID)
            hits = searcher.search(query, limit=1, count=False).hits
            if not hits:
                return None
            return int(searcher.doc(hits[0][1])["generation"][0])
        except (ValueError, OSError) as exc:
            logger.warning("the keyword index %s is unreadable (%s)", self.path, exc)
            return None

    def reload(self) -> None:
        """See the last commit (another process's too)."""
        index = self._opened()
        if index is not None:
            index.reload()

    def catch_up(self, reader: StoreReader, wait_seconds: float = 30.0) -> int:
        """Bring the index to the generation of `reader`'s snapshot (call inside its read
        transaction); rebuilt whole if missing, unreadable or ahead of the store.
        Returns the number of chunks written or removed."""
        with hold_lock(self._lock_path, f"the keyword index {self.path}", wait_seconds):
            target = reader.generation()
            self.reload()  # another process may have caught it up already
            held = self.generation()
            if held == target:
                return 0
            if held is None or held > target:
                if held is not None:
                    logger.warning("the keyword index %s is ahead of its store (%d > %d); "
                                   "rebuilding it", self.path, held, target)
                changed = self._rebuild(reader, target)
            else:
                changed = self._apply(reader, held, target)
            self.reload()
            return changed

    def _rebuild(self, reader: StoreReader, target: int) -> int:
        with self._open_lock:
            self._index = None
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        index = tantivy.Index(self._schema, path=str(self.path))
        index.register_tokenizer(ANALYZER, _analyzer())
        written, started = 0, time.perf_counter()
        with _writing(index, WRITER_HEAP) as writer:
            for ids, terms in reader.keyword_terms_since(0):
                for chunk_id, text in zip(ids, terms, strict=True):
                    writer.add_document(_document(chunk_id, text))
                written += len(ids)
            self._commit(writer, target)
        logger.info("built the keyword index %s: %d chunks in %.1f s", self.path, written,
                    time.perf_counter() - started)
        return written

    def _apply(self, reader: StoreReader, held: int, target: int) -> int:
        index = self._opened()
        assert index is not None
        with _writing(index, WRITER_HEAP // 4) as writer:
            removed = reader.removed_since(held)
            self._delete(writer, removed)
            changed = len(removed)
            for ids, terms in reader.keyword_terms_since(held):
                # Idempotent: a repeated catch-up must not index a chunk twice.
                self._delete(writer, ids)
                for chunk_id, text in zip(ids, terms, strict=True):
                    writer.add_document(_document(chunk_id, text))
                changed += len(ids)
            self._commit(writer, target)
        return changed

    def _delete(self, writer: tantivy.IndexWriter, chunk_ids: list[int]) -> None:
        # By query: the schema turns the ids into u64 terms (delete_documents_by_term
        # would make i64 ones, which match nothing).
        for start in range(0, len(chunk_ids), BATCH):
            writer.delete_documents_by_query(tantivy.Query.term_set_query(
                self._schema, "chunk_id", chunk_ids[start:start + BATCH]))

    def _commit(self, writer: tantivy.IndexWriter, target: int) -> None:
        self._delete(writer, [MARKER_ID])
        writer.add_document(_document(MARKER_ID, generation=target))
        writer.commit()

    # -- reading -------------------------------------------------------------------

    def search(self, tokens: list[str], k: int, among: list[int] | None = None,
               allowed: set[int] | None = None) -> list[tuple[int, float]]:
        """The k best (chunk id, BM25 score) pairs, best first, only among `among` or
        `allowed` if given (the same contract as qa.index.keywords.search_keywords)."""
        unique = list(dict.fromkeys(t for t in tokens if t.strip()))
        index = self._opened()
        if not unique or k <= 0 or index is None:
            return []
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(self._schema, "terms", t))
             for t in unique])
        restrict = among if allowed is None else allowed
        if restrict is not None:
            if not restrict:
                return []
            # Scored 0, so the BM25 of the terms alone ranks the chunks kept.
            kept = tantivy.Query.const_score_query(
                tantivy.Query.term_set_query(self._schema, "chunk_id", sorted(restrict)), 0.0)
            query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, query), (tantivy.Occur.Must, kept)])
        searcher = index.searcher()
        hits = searcher.search(query, limit=k, count=False).hits
        if not hits:
            return []
        ids = searcher.fast_field_values("chunk_id", [address for _, address in hits])
        return [(int(i), float(score)) for i, (score, _) in zip(ids, hits, strict=True)]

    def document_frequencies(self, tokens: list[str]) -> dict[str, int]:
        """How many chunks hold each token (tokens in no chunk are left out)."""
        index = self._opened()
        if index is None:
            return {}
        searcher = index.searcher()
        found = {t: searcher.doc_freq("terms", t) for t in dict.fromkeys(tokens)}
        return {t: n for t, n in found.items() if n}
