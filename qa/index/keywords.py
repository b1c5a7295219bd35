"""BM25 keyword search: SQLite FTS5 over pre-tokenised text, inside the store's file.

The text is tokenised by qa.tokenizer (jieba) at index time and stored as
space-separated tokens; FTS5 keeps the postings on disk and scores with BM25,
so nothing is rebuilt per query and single chunks are added or removed in the
same transaction as their document.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable

# unicode61 splits on spaces and punctuation; keeping . % + - _ inside tokens
# leaves numbers such as 1.76 and 18.8% and names such as jd.com whole.
SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS keywords USING fts5(
    terms, tokenize = "unicode61 remove_diacritics 0 tokenchars '.%+-_'"
);
CREATE VIRTUAL TABLE IF NOT EXISTS keyword_vocabulary USING fts5vocab(keywords, row);
"""


class Fts5Keywords:
    """The FTS5 table of one store connection behind the keyword-index interface
    (qa.index.tantivy_keywords is the other implementation)."""

    may_lag = False
    """Inside the store's own transaction: it always holds exactly the snapshot's chunks."""
    takes_filters = False
    """Filters come as the set of chunk ids they keep (`allowed`)."""
    scores_like_fts5 = True
    """Its scores are the ones the fusion was tuned on."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def search(self, tokens: list[str], k: int, among: list[int] | None = None,
               allowed: set[int] | None = None,
               filters: object = None) -> list[tuple[int, float]]:
        return search_keywords(self.db, tokens, k, among, allowed)

    def document_frequencies(self, tokens: list[str]) -> dict[str, int]:
        return document_frequencies(self.db, tokens)


def _quote(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def add_keywords(db: sqlite3.Connection, entries: Iterable[tuple[int, list[str]]]) -> None:
    """Index (chunk id, tokens) pairs, inside the caller's transaction."""
    db.executemany(
        "INSERT INTO keywords (rowid, terms) VALUES (?, ?)",
        ((chunk_id, " ".join(tokens)) for chunk_id, tokens in entries),
    )


def remove_keywords(db: sqlite3.Connection, chunk_ids: list[int]) -> None:
    """Drop these chunks from the keyword index, inside the caller's transaction."""
    db.executemany("DELETE FROM keywords WHERE rowid = ?", ((i,) for i in chunk_ids))


def inverse_document_frequencies(
    total: int, frequencies: dict[str, int], tokens: list[str]
) -> dict[str, float]:
    """BM25-style idf of each token, log(1 + (N - df + 0.5) / (df + 0.5)); unseen ones too."""
    return {
        t: math.log(1 + (total - frequencies.get(t, 0) + 0.5) / (frequencies.get(t, 0) + 0.5))
        for t in dict.fromkeys(tokens)
    }


def document_frequencies(db: sqlite3.Connection, tokens: list[str]) -> dict[str, int]:
    """How many chunks hold each token (tokens in no chunk are left out)."""
    unique = list(dict.fromkeys(tokens))
    if not unique:
        return {}
    rows = db.execute(
        f"SELECT term, doc FROM keyword_vocabulary WHERE term IN ({','.join('?' * len(unique))})",
        unique,
    ).fetchall()
    return {term: int(count) for term, count in rows}


def search_keywords(
    db: sqlite3.Connection, tokens: list[str], k: int, among: list[int] | None = None,
    allowed: set[int] | None = None,
) -> list[tuple[int, float]]:
    """The k best (chunk id, BM25 score) pairs for query tokens, best first.

    `among` limits the search to a few chunk ids (to score another list's hits);
    `allowed` to any set of them (the matches are ranked, then filtered).
    """
    unique = list(dict.fromkeys(t for t in tokens if t.strip()))
    if not unique or k <= 0:
        return []
    query = " OR ".join(_quote(t) for t in unique)
    sql = "SELECT rowid, -bm25(keywords) FROM keywords WHERE keywords MATCH ?"
    params: list[object] = [query]
    if among is not None:
        if not among:
            return []
        sql += f" AND rowid IN ({','.join('?' * len(among))})"
        params.extend(int(i) for i in among)
    if allowed is not None and not allowed:
        return []
    sql += " ORDER BY bm25(keywords)"
    if allowed is None:
        sql += " LIMIT ?"
        params.append(k)
    try:
        cursor = db.execute(sql, params)
        if allowed is None:
            rows = cursor.fetchall()
        else:
            rows = []
            while len(rows) < k and (batch := cursor.fetchmany(512)):
                rows.extend(row for row in batch if row[0] in allowed)
            rows = rows[:k]
    except sqlite3.OperationalError as exc:
        if "fts5" not in str(exc) and "syntax" not in str(exc):
            raise
        # A token FTS5 cannot parse as a phrase: search without it is
        # better than failing the question.
        return []
    return [(int(rowid), float(score)) for rowid, score in rows]
