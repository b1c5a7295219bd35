"""What the Milvus engine sends to Milvus: keyword tokens spelled for its analyzer, and
filters as Milvus expressions (and as SQL over the side store's documents)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from qa.index.engine import Filters

# Longest encoded token kept as it is; longer ones (a URL, say) become a hash.
MAX_TERM_CHARS = 200

ANALYZERS = {
    # Our tokens, each spelled as one ASCII word for the standard tokenizer.
    "tokens": {"tokenizer": "standard"},
    # Our tokens joined by spaces and cut again by Milvus' own jieba (measured: worse).
    "jieba": {"tokenizer": "jieba"},
}


def encode_terms(tokens: list[str], analyzer: str = "tokens") -> str:
    """Our keyword tokens as the collection's analyzer should see them.

    Milvus Lite offers only the `standard` and `jieba` tokenizers (no whitespace one).
    jieba re-cuts our tokens (1.76 -> 1 . 76, search-mode sub-words again), and
    `standard` splits Chinese into single characters; hex-spelling each token makes the
    standard tokenizer see exactly our tokens, so both engines index the same terms,
    normalised the same way (NFKC, traditional -> simplified, the user dictionary)."""
    if analyzer == "jieba":
        return " ".join(t for t in tokens if t.strip())
    return " ".join(_term(t) for t in tokens if t.strip())


def _term(token: str) -> str:
    spelled = "x" + token.encode("utf-8").hex()
    if len(spelled) <= MAX_TERM_CHARS:
        return spelled
    return "h" + hashlib.blake2b(token.encode("utf-8"), digest_size=16).hexdigest()


def milvus_filter(filters: Filters | None) -> str:
    """A Milvus boolean expression for the filters ("" for none)."""
    if filters is None or filters.is_empty():
        return ""
    parts = []
    for field_name, values in (("source", filters.sources), ("doc_id", filters.doc_ids),
                               ("category", filters.categories)):
        if values:
            parts.append(f"{field_name} in [{', '.join(_quoted(v) for v in values)}]")
    if filters.date_from or filters.date_to:
        parts.append('date != ""')  # a document without a date fails any bound
    if filters.date_from:
        parts.append(f"date >= {_quoted(filters.date_from)}")
    if filters.date_to:
        parts.append(f"date <= {_quoted(filters.date_to)}")
    return " and ".join(parts)


def sql_filter(filters: Filters | None) -> tuple[str, list[Any]]:
    """The same filters as an SQL condition over the side store's `documents`."""
    if filters is None or filters.is_empty():
        return "1", []
    parts: list[str] = []
    params: list[Any] = []
    for column, values in (("source", filters.sources), ("doc_id", filters.doc_ids),
                           ("category", filters.categories)):
        if values:
            parts.append(f"{column} IN ({','.join('?' * len(values))})")
            params.extend(values)
    if filters.date_from or filters.date_to:
        parts.append("date IS NOT NULL AND date != ''")
    if filters.date_from:
        parts.append("date >= ?")
        params.append(filters.date_from)
    if filters.date_to:
        parts.append("date <= ?")
        params.append(filters.date_to)
    return " AND ".join(parts), params


def _quoted(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def and_(*parts: str) -> str:
    return " and ".join(f"({p})" for p in parts if p)
