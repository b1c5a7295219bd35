"""Exact BM25 for the Milvus engine, from statistics kept in its side store.

Milvus Lite keeps BM25 statistics per segment (milvus-io/milvus-lite#293), so a document
committed after a build lands in a small segment of its own and is scored with that
segment's idf and average length: a word only it holds scored 0.41 there against 7.58
after a rebuild. So the side store keeps what BM25 needs, in the transaction that writes
the chunks (`postings`: term -> chunk -> count; `chunk_lengths`; the total length in
`keyword_totals`; document frequencies are `term_chunks`, which the idf weights already
use), and every keyword score is computed here, the way SQLite FTS5's bm25() scores the
local engine: k1 = 1.2, b = 0.75, idf = ln((N - n + 0.5) / (n + 0.5)), at least 1e-6.

Candidates: when the question's words are held by at most `RARE_POSTINGS` chunks in all,
every chunk holding one of them is scored (as FTS5 does) and Milvus is not asked. Otherwise
Milvus proposes its BM25 top hits (chunks that match many of the words; its own scores only
choose them), and the side store adds every chunk holding one of the rarest words, up to
`RARE_POSTINGS` chunks, whatever segment it sits in.

Tokens are counted as FTS5 cuts them (`as_fts5_terms`). One difference remains: a question
token that FTS5 cuts in two (tim's) is a phrase there and two words here.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable

K1 = 1.2
B = 0.75
# FTS5 gives a word found in over half the chunks this idf instead of a negative one.
MIN_IDF = 1e-6
# Chunks taken from the side store's postings of the question's rarest words.
RARE_POSTINGS = 1000
# Milvus' BM25 hits asked for, as a multiple of the hits wanted.
MILVUS_DEPTH = 2

# What FTS5's unicode61 tokenizer (as `qa.index.keywords` sets it up) keeps as one token:
# letters, digits and . % + - _; a token of ours such as one'80 is two there (one, 80).
_FTS5_PIECE = re.compile(r"[\w.%+\-]+")


def as_fts5_terms(tokens: Iterable[str]) -> list[str]:
    """Our keyword tokens cut as FTS5 cuts them in the local engine (nearly always the
    same), so that the side store counts what FTS5 counts: one'80 holds the word one."""
    return [piece for token in tokens for piece in _FTS5_PIECE.findall(token)]


SCHEMA = """
CREATE TABLE IF NOT EXISTS postings (
    term TEXT NOT NULL, chunk_id INTEGER NOT NULL, tf INTEGER NOT NULL,
    PRIMARY KEY (term, chunk_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunk_lengths (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    length INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS keyword_totals (
    id INTEGER PRIMARY KEY CHECK (id = 1), length INTEGER NOT NULL
);
INSERT OR IGNORE INTO keyword_totals VALUES (1, 0);
"""


def has_statistics(db: sqlite3.Connection) -> bool:
    """Whether this side store keeps BM25 statistics (made before they existed: not)."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                      " AND name = 'keyword_totals'").fetchone() is not None


# -- writing (inside the side store's transaction) -------------------------------------

def add_chunks(db: sqlite3.Connection, entries: Iterable[tuple[int, list[str]]]) -> None:
    """Count the terms of new chunks: (chunk id, `as_fts5_terms`) pairs."""
    total = 0
    for chunk_id, tokens in entries:
        counts = Counter(tokens)
        db.executemany("INSERT INTO postings VALUES (?, ?, ?)",
                       ((term, chunk_id, n) for term, n in counts.items()))
        length = sum(counts.values())
        db.execute("INSERT INTO chunk_lengths VALUES (?, ?)", (chunk_id, length))
        total += length
    db.execute("UPDATE keyword_totals SET length = length + ?", (total,))


def remove_chunks(db: sqlite3.Connection, terms: dict[int, list[str]]) -> None:
    """Forget chunks about to be deleted: chunk id -> its distinct terms (`chunk_terms`)."""
    if not terms:
        return
    db.executemany("DELETE FROM postings WHERE term = ? AND chunk_id = ?",
                   ((term, chunk_id) for chunk_id, words in terms.items() for term in words))
    marks = ",".join("?" * len(terms))
    ids = list(terms)
    (length,) = db.execute(
        f"SELECT COALESCE(SUM(length), 0) FROM chunk_lengths WHERE chunk_id IN ({marks})",
        ids).fetchone()
    db.execute(f"DELETE FROM chunk_lengths WHERE chunk_id IN ({marks})", ids)
    db.execute("UPDATE keyword_totals SET length = length - ?", (length,))


# -- reading ---------------------------------------------------------------------------

def rarest(frequencies: dict[str, int], budget: int = RARE_POSTINGS) -> list[str]:
    """The rarest words, rarest first, while their chunk counts add up to at most
    `budget` (all of them when they fit)."""
    chosen: list[str] = []
    spent = 0
    for term, n in sorted(frequencies.items(), key=lambda item: (item[1], item[0])):
        if spent + n > budget:
            break
        chosen.append(term)
        spent += n
    return chosen


def chunks_holding(db: sqlite3.Connection, terms: list[str]) -> set[int]:
    """Every chunk holding one of these words."""
    if not terms:
        return set()
    marks = ",".join("?" * len(terms))
    return {row[0] for row in db.execute(
        f"SELECT chunk_id FROM postings WHERE term IN ({marks})", terms)}


def scores(db: sqlite3.Connection, frequencies: dict[str, int], chunk_count: int,
           chunk_ids: Iterable[int] | None = None) -> dict[int, float]:
    """FTS5's BM25 score of each chunk (of `chunk_ids`, or of all) that holds one of the
    words (`frequencies`: each distinct query word found in the index -> its chunk count)."""
    ids = None if chunk_ids is None else sorted({int(i) for i in chunk_ids})
    if ids == [] or not frequencies or chunk_count <= 0:
        return {}
    (total,) = db.execute("SELECT length FROM keyword_totals").fetchone()
    average = max(total, 1) / chunk_count
    counts: dict[int, list[tuple[float, int]]] = {}
    for term, n in frequencies.items():
        weight = idf(chunk_count, n)
        if ids is None:
            rows = db.execute("SELECT chunk_id, tf FROM postings WHERE term = ?", (term,))
        else:
            rows = db.execute("SELECT chunk_id, tf FROM postings WHERE term = ? AND chunk_id"
                              f" IN ({','.join('?' * len(ids))})", [term, *ids])
        for chunk_id, tf in rows:
            counts.setdefault(chunk_id, []).append((weight, tf))
    if not counts:
        return {}
    found = list(counts)
    lengths = dict(db.execute("SELECT chunk_id, length FROM chunk_lengths WHERE chunk_id IN"
                              f" ({','.join('?' * len(found))})", found))
    return {chunk_id: bm25(pairs, lengths.get(chunk_id, 0), average)
            for chunk_id, pairs in counts.items()}


def idf(chunk_count: int, n: int) -> float:
    """FTS5's idf of a word held by n of chunk_count chunks."""
    return max(math.log((chunk_count - n + 0.5) / (n + 0.5)), MIN_IDF)


def bm25(pairs: Iterable[tuple[float, int]], length: int, average: float) -> float:
    """FTS5's BM25 score of one chunk of `length` tokens: pairs are (idf, count in the
    chunk) of the query words it holds; `average` is the mean chunk length."""
    norm = K1 * (1 - B + B * length / average)
    return sum(weight * tf * (K1 + 1) / (tf + norm) for weight, tf in pairs)


def best(found: dict[int, float], k: int) -> list[tuple[int, float]]:
    """The k best (chunk id, score) pairs, best first (ties: lower id first)."""
    return sorted(found.items(), key=lambda item: (-item[1], item[0]))[:k]


def statistics_problems(db: sqlite3.Connection) -> list[str]:
    """Where the BM25 statistics disagree with each other or with the chunks (`qa check`)."""
    problems = []
    (total,) = db.execute("SELECT length FROM keyword_totals").fetchone()
    (summed,) = db.execute("SELECT COALESCE(SUM(length), 0) FROM chunk_lengths").fetchone()
    if total != summed:
        problems.append(f"the recorded keyword length {total} is not the chunks' {summed}")
    (unmeasured,) = db.execute(
        "SELECT COUNT(*) FROM chunks c LEFT JOIN chunk_lengths l ON l.chunk_id = c.id"
        " WHERE l.chunk_id IS NULL").fetchone()
    if unmeasured:
        problems.append(f"{unmeasured} chunks have no keyword length")
    (miscounted,) = db.execute(
        "SELECT COUNT(*) FROM (SELECT term, COUNT(*) AS n FROM postings GROUP BY term) p"
        " LEFT JOIN term_chunks t USING (term) WHERE t.chunks IS NOT p.n").fetchone()
    (unposted,) = db.execute(
        "SELECT COUNT(*) FROM term_chunks t"
        " WHERE NOT EXISTS (SELECT 1 FROM postings p WHERE p.term = t.term)").fetchone()
    if miscounted + unposted:
        problems.append(f"{miscounted + unposted} keyword tokens have postings that "
                        "disagree with their chunk counts")
    return problems
