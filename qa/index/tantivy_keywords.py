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
a writer calls it after each SQLite commit (a bulk writer every few commits and at its
end: LocalEngine.keywords_deferred), and the engine calls it on open and on refresh, so
a crash between the two commits leaves an index behind, which the next open finds (its
marker is older than the store) and repairs. A missing, unreadable or
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

from qa.filters import Filters
from qa.index.layout import hold_lock
from qa.index.store import KeywordRow, StoreReader

logger = logging.getLogger(__name__)

FOLDER = "keywords.tantivy"
LOCK_FILE = "keywords.tantivy.lock"
ANALYZER = "whitespace"
MARKER_ID = 0
# Writer memory: tantivy splits it between its threads and flushes a segment when full.
WRITER_HEAP = 128_000_000
BATCH = 4096
# doc_freq (the term dictionary) counts deleted chunks until tantivy merges their
# segment, and a big segment (a bulk build's) may go unmerged for good: a word of one
# chunk, replaced once, counts 2 (idf 0.51 too low at 30,000 chunks). A word in at most
# this many chunks is counted by a query that skips deleted chunks (it reads the word's
# postings: 0.15 ms p50 a question at 1M chunks, scripts/bench_idf_drift.py cost); a
# commoner word's idf moves by about 1/df per deleted chunk, under 0.0002.
EXACT_COUNT_MAX = 5_000


# Stored in the marker: an index written with another schema is rebuilt.
FORMAT = 2


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    # Term frequencies without positions: BM25 needs no phrases.
    builder.add_text_field("terms", tokenizer_name=ANALYZER, index_option="freq")
    builder.add_unsigned_field("chunk_id", indexed=True, fast=True)
    # The document fields filters look at (qa.filters), so that a filter is a query of
    # its own: a set of 10,000 chunk ids took ~0.5 s as a term-set query at 1M chunks.
    for name in ("doc_id", "source", "category"):
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field("day", indexed=True, fast=True)  # 2024-05-10 -> 20240510
    builder.add_unsigned_field("generation", stored=True)
    builder.add_unsigned_field("format", stored=True)
    return builder.build()


def _document(row: KeywordRow) -> tantivy.Document:
    document = tantivy.Document()
    document.add_unsigned("chunk_id", row.chunk_id)
    document.add_text("terms", row.terms)
    for name in ("doc_id", "source", "category"):
        if (value := getattr(row, name)) is not None:
            document.add_text(name, value)
    if (day := _day(row.date)) is not None:
        document.add_unsigned("day", day)
    return document


def _marker(generation: int) -> tantivy.Document:
    document = tantivy.Document()
    document.add_unsigned("chunk_id", MARKER_ID)
    document.add_unsigned("generation", generation)
    document.add_unsigned("format", FORMAT)
    return document


def _day(date: str | None) -> int | None:
    """An ISO date as a number that sorts like it; None for anything else (a document
    without a full date fails every date bound, as in the store's filter)."""
    if date is None or len(date) != 10 or date[4] != "-" or date[7] != "-":
        return None
    digits = date[:4] + date[5:7] + date[8:]
    return int(digits) if digits.isdigit() else None


def _any_of(schema: tantivy.Schema, field: str, values) -> tantivy.Query:
    return tantivy.Query.boolean_query(
        [(tantivy.Occur.Should, tantivy.Query.term_query(schema, field, v)) for v in values])


def filter_query(schema: tantivy.Schema, filters: Filters) -> tantivy.Query:
    """The chunks of the documents `filters` keeps, as a query (see store.filter_sql)."""
    parts = [_any_of(schema, field, values) for field, values in (
        ("source", filters.sources), ("doc_id", filters.doc_ids),
        ("category", filters.categories)) if values]
    if filters.date_from or filters.date_to:
        low, high = _day(filters.date_from), _day(filters.date_to)
        parts.append(tantivy.Query.range_query(
            schema, "day", tantivy.FieldType.Unsigned, low if low is not None else 0,
            high if high is not None else 99_999_999))
    return tantivy.Query.boolean_query([(tantivy.Occur.Must, part) for part in parts])


def _analyzer() -> tantivy.TextAnalyzer:
    # The tokens are already folded (lower case, simplified): split on spaces only.
    return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()


@contextmanager
def _writing(index: tantivy.Index, heap: int) -> Iterator[tantivy.IndexWriter]:
    """A writer for the block; dropped at the end (which releases tantivy's own lock),
    its uncommitted changes discarded if the block fails."""
    writer = index.writer(heap_size=heap, num_threads=1)
    # A writer killed inside its commit leaves the files it wrote (listed as managed,
    # used by no meta); the same commit made again would collide with them
    # (FileAlreadyExists). tantivy collects such files after its own commits too.
    writer.garbage_collect_files()
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
    takes_filters = True
    """Filters are a query here, cheaper than a list of the chunk ids they keep."""
    scores_like_fts5 = False
    """Its BM25 differs from FTS5's: its hits are rescored (qa.index.keyword_rescore)."""

    def __init__(self, store_dir: Path):
        self.path = store_dir / FOLDER
        self._lock_path = store_dir / LOCK_FILE
        self._schema = _schema()
        self._index: tantivy.Index | None = None
        # The generation the searches see (as of the last reload or catch-up).
        self.held: int | None = None
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
            marker = searcher.doc(hits[0][1]).to_dict()
            if marker.get("format") != [FORMAT]:
                return None
            return int(marker["generation"][0])
        except (ValueError, OSError) as exc:
            logger.warning("the keyword index %s is unreadable (%s)", self.path, exc)
            return None

    def reload(self) -> None:
        """See the last commit (another process's too)."""
        index = self._opened()
        if index is not None:
            index.reload()
        self.held = self.generation()

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
            for rows in reader.keyword_rows_since(0):
                for row in rows:
                    writer.add_document(_document(row))
                written += len(rows)
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
            for rows in reader.keyword_rows_since(held):
                # Idempotent: a repeated catch-up must not index a chunk twice.
                self._delete(writer, [row.chunk_id for row in rows])
                for row in rows:
                    writer.add_document(_document(row))
                changed += len(rows)
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
        writer.add_document(_marker(target))
        writer.commit()

    # -- reading -------------------------------------------------------------------

    def search(self, tokens: list[str], k: int, among: list[int] | None = None,
               allowed: set[int] | None = None,
               filters: Filters | None = None) -> list[tuple[int, float]]:
        """The k best (chunk id, BM25 score) pairs, best first, only among `among` or
        `allowed` if given (the same contract as qa.index.keywords.search_keywords), and
        only in the documents `filters` keeps."""
        unique = list(dict.fromkeys(t for t in tokens if t.strip()))
        index = self._opened()
        if not unique or k <= 0 or index is None:
            return []
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(self._schema, "terms", t))
             for t in unique])
        restrictions = []
        restrict = among if allowed is None else allowed
        if restrict is not None:
            if not restrict:
                return []
            restrictions.append(
                tantivy.Query.term_set_query(self._schema, "chunk_id", sorted(restrict)))
        if filters is not None and not filters.is_empty():
            restrictions.append(filter_query(self._schema, filters))
        if restrictions:
            # Scored 0, so the BM25 of the terms alone ranks the chunks kept.
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, query)] + [
                (tantivy.Occur.Must, tantivy.Query.const_score_query(part, 0.0))
                for part in restrictions])
        searcher = index.searcher()
        hits = searcher.search(query, limit=k, count=False).hits
        if not hits:
            return []
        ids = searcher.fast_field_values("chunk_id", [address for _, address in hits])
        return [(int(i), float(score)) for i, (score, _) in zip(ids, hits, strict=True)]

    def chunk_ids(self) -> list[int]:
        """Every chunk id the index holds (for `qa check`; reads the whole id column)."""
        index = self._opened()
        if index is None:
            return []
        searcher = index.searcher()
        hits = searcher.search(tantivy.Query.all_query(), limit=max(searcher.num_docs, 1),
                               count=False).hits
        ids = searcher.fast_field_values("chunk_id", [address for _, address in hits])
        return [int(i) for i in ids if int(i) != MARKER_ID]

    def document_frequencies(self, tokens: list[str]) -> dict[str, int]:
        """How many chunks hold each token (tokens in no chunk are left out)."""
        index = self._opened()
        if index is None:
            return {}
        searcher = index.searcher()
        found = {}
        for token in dict.fromkeys(tokens):
            count = searcher.doc_freq("terms", token)
            if 0 < count <= EXACT_COUNT_MAX:
                query = tantivy.Query.term_query(self._schema, "terms", token)
                count = searcher.search(query, limit=1, count=True).count
            if count:
                found[token] = count
        return found
