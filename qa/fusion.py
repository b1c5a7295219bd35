"""Combining vector and keyword evidence into one ranking. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """A chunk with both components' scores and the score it is ranked by."""

    chunk_id: int
    vector: float
    keyword: float
    score: float


def _min_max(values: dict[int, float], range_floor: float = 0.0) -> dict[int, float]:
    """Each value's place between the lowest and the highest, 0-1; with `range_floor`,
    the range divided by is at least that, so a tiny spread is not stretched to 0-1."""
    if not values:
        return {}
    low, high = min(values.values()), max(values.values())
    spread = max(high - low, range_floor)
    if spread <= 1e-12:
        return {key: 1.0 if high > 0 else 0.0 for key in values}
    return {key: (value - low) / spread for key, value in values.items()}


def blend(
    vector: dict[int, float], keyword: dict[int, float], vector_weight: float,
    cosine_range_floor: float = 0.0,
) -> list[Candidate]:
    """Rank the union of candidates by a weighted sum of min-max normalised scores.

    Both maps must score every candidate (a chunk no query term matched has
    keyword score 0). Normalising within the candidates puts the two scales
    (cosine about 0.7–0.95, BM25 unbounded) on the same footing per question.
    The cosines are divided by their range or `cosine_range_floor`, whichever is
    larger: when a question's candidates lie within a few hundredths of cosine (a
    large pool of similar news), a 0.02 lead is then a 0.02 lead, not a quarter of
    the scale that outvotes a clear keyword lead.
    """
    ids = set(vector) | set(keyword)
    v = _min_max({i: vector.get(i, 0.0) for i in ids}, cosine_range_floor)
    k = _min_max({i: keyword.get(i, 0.0) for i in ids})
    candidates = [
        Candidate(i, vector.get(i, 0.0), keyword.get(i, 0.0),
                  vector_weight * v[i] + (1 - vector_weight) * k[i])
        for i in ids
    ]
    return sort_candidates(candidates)


def add_bonuses(ranked: list[Candidate], bonuses: dict[int, float], weight: float
                ) -> list[Candidate]:
    """The candidates re-sorted by (score + weight × bonus) / (1 + weight); a candidate
    without a bonus gets 0. Dividing by 1 + weight keeps a 0-1 score within 0-1."""
    scaled = [Candidate(c.chunk_id, c.vector, c.keyword,
                        (c.score + weight * bonuses.get(c.chunk_id, 0.0)) / (1 + weight))
              for c in ranked]
    return sort_candidates(scaled)


def reciprocal_rank(
    vector: dict[int, float], keyword: dict[int, float], vector_weight: float, k: int = 60
) -> list[Candidate]:
    """Weighted reciprocal rank fusion: each list adds weight / (k + rank)."""
    ids = set(vector) | set(keyword)
    v_rank = _ranks(vector)
    k_rank = _ranks({i: s for i, s in keyword.items() if s > 0})
    candidates = []
    for i in ids:
        score = 0.0
        if i in v_rank:
            score += vector_weight / (k + v_rank[i])
        if i in k_rank:
            score += (1 - vector_weight) / (k + k_rank[i])
        candidates.append(Candidate(i, vector.get(i, 0.0), keyword.get(i, 0.0), score))
    return sort_candidates(candidates)


def single(vector: dict[int, float], keyword: dict[int, float], by: str) -> list[Candidate]:
    """Rank by one component alone ("vector" or "keyword")."""
    ids = set(vector) | set(keyword)
    candidates = []
    for i in ids:
        v, kw = vector.get(i, 0.0), keyword.get(i, 0.0)
        candidates.append(Candidate(i, v, kw, v if by == "vector" else kw))
    return sort_candidates(candidates)


def _ranks(scores: dict[int, float]) -> dict[int, int]:
    order = sorted(scores, key=lambda i: (-scores[i], i))
    return {chunk_id: rank for rank, chunk_id in enumerate(order, start=1)}


def sort_candidates(candidates: list[Candidate]) -> list[Candidate]:
    """Best first; ties go to the lower chunk id (earlier in the corpus) for stable output."""
    return sorted(candidates, key=lambda c: (-c.score, c.chunk_id))
