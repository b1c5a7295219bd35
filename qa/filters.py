"""Which documents a question may be answered from: sources, ids, categories, a date range.

One dataclass for the library, the API and the CLI, and one parser that turns what a
client sent into it with a message naming whatever is wrong.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from qa.errors import InvalidQuestionError

SORTS = ("relevance", "date")
# The JSON names of the fields, as POST /api/ask takes them under "filters".
FIELDS = ("source", "doc_id", "category", "date_from", "date_to")
MAX_VALUES = 200


@dataclass(frozen=True)
class Filters:
    """Empty fields do not filter. Dates are ISO `YYYY-MM-DD`, inclusive; a document
    without a date fails any date bound. Both searches apply them inside, so a filtered
    question gets its best k among the matching documents."""

    sources: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None

    def is_empty(self) -> bool:
        return not (self.sources or self.doc_ids or self.categories
                    or self.date_from or self.date_to)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as the answer echoes it (only the fields that filter)."""
        shown = {"source": list(self.sources), "doc_id": list(self.doc_ids),
                 "category": list(self.categories), "date_from": self.date_from,
                 "date_to": self.date_to}
        return {k: v for k, v in shown.items() if v}


NO_FILTERS = Filters()


def parse_filters(value: object) -> Filters:
    """Filters from a JSON object ({"source": [...], "date_from": "2024-01-01", …})."""
    if value is None:
        return NO_FILTERS
    if not isinstance(value, dict):
        raise InvalidQuestionError("filters must be an object with any of: "
                                   + ", ".join(FIELDS))
    unknown = sorted(set(value) - set(FIELDS))
    if unknown:
        raise InvalidQuestionError(f"unknown filter {unknown[0]!r} (known: {', '.join(FIELDS)})")
    # A range given backwards is not an error (the schema allows it): it keeps nothing,
    # and the answer says so with documents_matched = 0.
    date_from = _date(value.get("date_from"), "date_from")
    date_to = _date(value.get("date_to"), "date_to")
    return Filters(
        sources=_texts(value.get("source"), "source"),
        doc_ids=_texts(value.get("doc_id"), "doc_id"),
        categories=_texts(value.get("category"), "category"),
        date_from=date_from,
        date_to=date_to,
    )


def parse_sort(value: object) -> str:
    if value not in SORTS:
        raise InvalidQuestionError(f"sort must be one of {', '.join(SORTS)}")
    return str(value)


def _texts(value: object, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if (not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value)
            or len(value) > MAX_VALUES):
        raise InvalidQuestionError(
            f"filter {name!r} must be a list of up to {MAX_VALUES} non-empty strings")
    return tuple(dict.fromkeys(v.strip() for v in value))


def _date(value: object, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidQuestionError(f"{name} must be a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise InvalidQuestionError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from None
