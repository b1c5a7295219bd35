"""The answer schema, shared by `qa ask --json` and the HTTP API."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from qa.filters import NO_FILTERS, Filters


@dataclass(frozen=True)
class Citation:
    """Where a passage comes from; `char_start/char_end` index the document's clean text."""

    doc_id: str
    title: str | None
    source: str | None
    date: str | None
    url: str | None
    section: str | None
    # `paragraph` is the first paragraph the passage covers (kept for compatibility);
    # a passage that merged short paragraphs covers paragraph_start..paragraph_end.
    paragraph: int
    paragraph_start: int
    paragraph_end: int
    char_start: int
    char_end: int


@dataclass(frozen=True)
class Passage:
    """One ranked passage; `highlight` is the answering sentence's span inside `text`;
    `also_in` cites the other documents carrying the same text (wire copies)."""

    rank: int
    score: float
    text: str
    highlight: tuple[int, int]
    citation: Citation
    vector_score: float
    keyword_score: float
    also_in: tuple[Citation, ...] = field(default=())


@dataclass(frozen=True)
class Answer:
    """A question and its ranked passages."""

    question: str
    took_ms: float
    passages: list[Passage]
    mode: str = "hybrid"
    confident: bool = True
    filters: Filters = NO_FILTERS
    sort: str = "relevance"
    # How many documents the filters kept (all of them without filters).
    documents_matched: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the schema documented in the README and the OpenAPI document."""
        return {
            "question": self.question,
            "took_ms": round(self.took_ms, 2),
            "mode": self.mode,
            "confident": self.confident,
            "filters": self.filters.to_dict(),
            "sort": self.sort,
            "documents_matched": self.documents_matched,
            "passages": [
                {
                    "rank": p.rank,
                    "score": round(p.score, 6),
                    "text": p.text,
                    "highlight": {"start": p.highlight[0], "end": p.highlight[1]},
                    "scores": {
                        "vector": round(p.vector_score, 6),
                        "keyword": round(p.keyword_score, 6),
                    },
                    "citation": _citation_dict(p.citation),
                    "also_in": [_citation_dict(c) for c in p.also_in],
                }
                for p in self.passages
            ],
        }


_CITATION_FIELDS = tuple(f.name for f in fields(Citation))


def _citation_dict(citation: Citation) -> dict[str, Any]:
    """`dataclasses.asdict` of a Citation, without its deep copies (every field is a str,
    an int or None): asdict cost a server about 0.5 ms of GIL time per answer."""
    return {name: getattr(citation, name) for name in _CITATION_FIELDS}
