"""FTS5's exact BM25 for the candidates another keyword index proposes.

tantivy finds a question's best chunks without scoring every match, but its BM25 is not
FTS5's (another idf, document lengths kept in one byte), and the fusion and the answering
sentence were tuned on FTS5's scores: two chunks 0.23 apart in FTS5 were 0.009 apart in
tantivy, enough to flip a pinned answer. So tantivy only proposes `candidates(k)` chunks,
and this module scores them as FTS5's bm25() would (the formula is `milvus_bm25.bm25`):

- each candidate's tokens come from the store's FTS5 table (the text tantivy is built
  from), so its term counts are exact, and a chunk removed since tantivy's last
  catch-up has no row and drops out; its length is FTS5's own record of it;
- the chunk count and total length come from FTS5's own statistics record (read in the
  caller's snapshot, so exact and one row);
- the document frequencies come from the other index's term dictionary (tantivy's
  doc_freq: exact until chunks are deleted; a deleted chunk still counts there until
  its segment is merged, so a count is capped at N).
"""

from __future__ import annotations

import sqlite3

from qa.index import milvus_bm25

# Candidates asked of the proposing index for k results (README, "Speed: keyword search
# at a million chunks", measured with scripts/bench_keywords.py).
CANDIDATE_FLOOR = 50
CANDIDATE_FACTOR = 2


def candidates(k: int) -> int:
    """How many chunks to ask the proposing index for, to keep the best k."""
    return max(CANDIDATE_FACTOR * k, CANDIDATE_FLOOR)


def _varints(data: bytes) -> list[int]:
    """The SQLite varints in `data` (big-endian groups of 7 bits, a 9th byte of 8)."""
    values, position = [], 0
    while position < len(data):
        value = 0
        for index in range(9):
            byte = data[position]
            position += 1
            if index == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        values.append(value)
    return values


def fts5_totals(db: sqlite3.Connection) -> tuple[int, int]:
    """(rows, tokens) of the store's FTS5 table: the record its bm25() reads for N and
    the average length (the `keywords_data` row with id 1: varint rows, then tokens)."""
    row = db.execute("SELECT block FROM keywords_data WHERE id = 1").fetchone()
    if row is None or not row[0]:
        return 0, 0
    values = _varints(bytes(row[0]))
    return values[0], (values[1] if len(values) > 1 else 0)


def rescore(db: sqlite3.Connection, tokens: list[str], hits: list[tuple[int, float]],
            frequencies: dict[str, int], k: int) -> list[tuple[int, float]]:
    """The k best of `hits` by FTS5's BM25 of `tokens`, best first; `frequencies` are
    the tokens' chunk counts. Chunks not in the snapshot's FTS5 table are left out."""
    unique = list(dict.fromkeys(t for t in tokens if t.strip()))
    rows, total = fts5_totals(db)
    if not hits or not unique or rows <= 0 or k <= 0:
        return []
    average = max(total, 1) / rows
    # A count taken from an index that still holds deleted chunks may pass N.
    weights = {t: milvus_bm25.idf(rows, min(frequencies[t], rows))
               for t in unique if frequencies.get(t)}
    ids = list(dict.fromkeys(int(i) for i, _ in hits))
    stored = db.execute(f"SELECT rowid, terms FROM keywords WHERE rowid IN"
                        f" ({','.join('?' * len(ids))})", ids).fetchall()
    counted = {}
    for chunk_id, terms in stored:
        # Python work on each of max(2k, 50) candidates holds the GIL a server's other
        # requests wait for: a word the text does not hold even as a substring is not
        # counted, and a candidate holding none of them is not split at all.
        inside = [(t, weight) for t, weight in weights.items() if t in terms]
        if not inside:
            continue
        words = terms.split()
        pairs = [(weight, count) for t, weight in inside if (count := words.count(t))]
        if pairs:
            counted[chunk_id] = pairs
    lengths = fts5_lengths(db, list(counted))
    # FTS5 counts the length as its tokenizer cuts the text (one'80 is two there).
    found = {chunk_id: milvus_bm25.bm25(pairs, lengths[chunk_id], average)
             for chunk_id, pairs in counted.items()}
    return milvus_bm25.best(found, k)


def fts5_lengths(db: sqlite3.Connection, ids: list[int]) -> dict[int, int]:
    """Each chunk's length in tokens as FTS5 counted it when it indexed the chunk: the
    record its bm25() reads (`keywords_docsize`: one varint per column). The same as
    the count of `milvus_bm25.as_fts5_terms` over its tokens (a test holds them equal),
    read instead of recounted: a regex pass over a candidate's tokens cost more than its
    BM25."""
    if not ids:
        return {}
    rows = db.execute(f"SELECT id, sz FROM keywords_docsize WHERE id IN"
                      f" ({','.join('?' * len(ids))})", ids).fetchall()
    return {chunk_id: _varints(bytes(size))[0] for chunk_id, size in rows}
