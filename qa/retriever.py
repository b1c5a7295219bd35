"""Question -> ranked passages with citations and the answering sentence marked."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from qa.answer import Answer, Citation, Passage
from qa.background_embedding import BackgroundWork
from qa.bridge import EnglishBridge
from qa.config import MODES, Config
from qa.duplicates import group_duplicates
from qa.embedder import Embedder
from qa.errors import IndexMismatchError, InvalidQuestionError
from qa.filters import NO_FILTERS, Filters
from qa.fusion import Candidate, add_bonuses, blend, single
from qa.highlight import Span, answer_spans
from qa.index.engine import Engine, Snapshot
from qa.index.manifest import check_manifest
from qa.index.store import StoredChunk
from qa.passage_choice import stand_ins
from qa.passage_features import wording_bonuses
from qa.question_terms import keep_rarest
from qa.sentence_vectors import QuestionVectors, SentenceVectors
from qa.tokenizer import Tokenizer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Query:
    """A question prepared for both searches."""

    text: str
    vector: np.ndarray
    tokens: list[str]
    # Inverse document frequency of each token in the index, for weighting.
    idf: dict[str, float]


class Retriever:
    """Answers questions from an open index with one embedding model."""

    def __init__(self, config: Config, engine: Engine, embedder: Embedder):
        if embedder.dimension != engine.dimension:
            raise IndexMismatchError(
                f"the model gives {embedder.dimension}-dimensional vectors but the index "
                f"holds {engine.dimension}; run `qa index --rebuild` to rebuild it"
            )
        check_manifest(engine.manifest, config, embedder.dimension)
        self.config = config
        self.engine = engine
        self.embedder = embedder
        self.tokenizer = Tokenizer(config.keywords.user_words)
        # Where the time of a question goes (the server feeds /metrics from it).
        self.stages = StageTimer()
        # Embeds the question while its keyword side runs (qa.background_embedding).
        self.background = BackgroundWork()
        # Sentence vectors for the model's choice of an answering sentence, kept.
        self.sentence_vectors = SentenceVectors(embedder)
        # The vectors of the questions asked last, kept: popular questions come back.
        self.question_vectors = QuestionVectors(embedder)
        # Chinese keywords for English questions (CC-CEDICT); loaded on first use.
        self.bridge = (EnglishBridge(config.model.cache_dir)
                       if config.keywords.english_bridge else None)
        # A second of dictionary loading belongs to start-up, not to the first question.
        self.tokenizer.load()

    def validate_question(self, question: object) -> str:
        """The question, stripped; raises InvalidQuestionError if it cannot be asked."""
        if not isinstance(question, str):
            raise InvalidQuestionError("the question must be a string")
        stripped = question.strip()
        if not stripped:
            raise InvalidQuestionError("the question is empty")
        limit = self.config.retrieval.max_question_chars
        if len(stripped) > limit:
            raise InvalidQuestionError(
                f"the question is {len(stripped)} characters long; the limit is {limit}"
            )
        return stripped

    def validate_top_k(self, top_k: object) -> int:
        """top_k as an int within 1..max_top_k; raises InvalidQuestionError otherwise."""
        limit = self.config.retrieval.max_top_k
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= limit:
            raise InvalidQuestionError(f"top_k must be an integer from 1 to {limit}")
        return top_k

    def validate_mode(self, mode: object) -> str:
        """The search mode; raises InvalidQuestionError for an unknown one."""
        if mode not in MODES:
            raise InvalidQuestionError(f"mode must be one of {', '.join(MODES)}")
        return str(mode)

    def prepare(self, question: str, vector: np.ndarray | None = None,
                snapshot: Snapshot | None = None) -> Query:
        """Embed (unless `vector` is given) and tokenise a validated question.

        A `vector` given should embed `embedding_text(question)`, as `ask` does.
        """
        terms = self._bridge_terms(question)
        if vector is None:
            vector = self._embed_question(_with_terms(question, terms))
        if snapshot is None:
            with self.engine.snapshot() as snapshot:
                return Query(question, vector, *self._weighted_tokens(question, terms, snapshot))
        return Query(question, vector, *self._weighted_tokens(question, terms, snapshot))

    def _embed_question(self, text: str) -> np.ndarray:
        with self.stages.timed("embed"):
            return self.question_vectors.vectors([text])[0]

    def _weighted_tokens(self, question: str, terms: str,
                         snapshot: Snapshot) -> tuple[list[str], dict[str, float]]:
        """The question's rarest tokens (with an English question's Chinese terms) and
        their idf."""
        tokens = self.tokenizer.tokens(question)
        if terms:
            # Through the tokenizer, so that a term matches the index's own words.
            tokens += self.tokenizer.tokens(terms)
        limit = self.config.retrieval.max_question_terms
        return keep_rarest(tokens, snapshot.idf(tokens), limit)

    def _prepare_and_search_keywords(
        self, question: str, mode: str, limit: int, snapshot: Snapshot, filters: Filters
    ) -> tuple[Query, dict[int, float] | None]:
        """`prepare`, with the keyword search of `rank` done while the model embeds the
        question on a background worker (qa.background_embedding): the same Query and
        the same keyword hits as the two steps one after the other."""
        terms = self._bridge_terms(question)
        embedding = self.background.start(
            lambda: self._embed_question(_with_terms(question, terms)))
        tokens, idf = self._weighted_tokens(question, terms, snapshot)
        keyword = None
        if mode in ("hybrid", "keyword"):
            keyword = self._keyword_search(snapshot, tokens, self._depth(limit), filters)
        return Query(question, embedding.result(), tokens, idf), keyword

    def embedding_text(self, question: str) -> str:
        """What is embedded for a question: with an English question's Chinese terms
        appended, which link it to Chinese passages better than the English alone."""
        return _with_terms(question, self._bridge_terms(question))

    def _bridge_terms(self, question: str) -> str:
        return " ".join(self.bridge.terms(question)) if self.bridge is not None else ""

    def rank(self, query: Query, mode: str, limit: int, snapshot: Snapshot | None = None,
             filters: Filters = NO_FILTERS,
             keyword_hits: dict[int, float] | None = None) -> list[Candidate]:
        """The best `limit` chunks for a prepared question (among the documents the
        filters keep), with both components' scores. `keyword_hits`, if given, is the
        keyword search's result for this query, limit and filters, already done."""
        if snapshot is None:
            with self.engine.snapshot() as snapshot:
                return self.rank(query, mode, limit, snapshot, filters, keyword_hits)
        depth = self._depth(limit)
        vector: dict[int, float] = {}
        keyword: dict[int, float] = {}
        if mode in ("hybrid", "vector"):
            with self.stages.timed("vector_search"):
                vector = dict(snapshot.vector_search(query.vector, depth, filters))
        if mode in ("hybrid", "keyword"):
            keyword = (dict(keyword_hits) if keyword_hits is not None
                       else self._keyword_search(snapshot, query.tokens, depth, filters))
        with self.stages.timed("fusion"):
            if mode == "hybrid":
                self._complete(snapshot, query, vector, keyword)
                ranked = blend(vector, keyword, self._vector_weight(snapshot, query, keyword),
                               self.config.retrieval.cosine_range_floor)
                ranked = self._by_wording(snapshot, query, ranked)
            else:
                ranked = single(vector, keyword, by=mode)
        top = ranked[:limit]
        if mode != "hybrid":
            # Show the other component's score too, for the few we return.
            ids = [c.chunk_id for c in top]
            other_vector = dict(vector)
            other_keyword = dict(keyword)
            self._complete(snapshot, query, other_vector, other_keyword, only=ids)
            top = [
                Candidate(c.chunk_id, other_vector[c.chunk_id], other_keyword[c.chunk_id],
                          c.score)
                for c in top
            ]
        return top

    def _depth(self, limit: int) -> int:
        return max(self.config.retrieval.candidates, limit)

    def _keyword_search(self, snapshot: Snapshot, tokens: list[str], depth: int,
                        filters: Filters) -> dict[int, float]:
        with self.stages.timed("keyword_search"):
            return dict(snapshot.keyword_search(tokens, depth, filters=filters))

    def _vector_weight(self, snapshot: Snapshot, query: Query,
                       keyword: dict[int, float]) -> float:
        """The vector share of the blend for this question.

        When the best keyword match holds most of the question's keyword weight, the
        words themselves found the passage and keywords get more say; when it holds
        little (a paraphrase, an English question) the vectors get more.
        """
        low = self.config.retrieval.vector_weight_min
        high = self.config.retrieval.vector_weight_max
        if not keyword or low == high:
            return high
        best = max(keyword, key=keyword.__getitem__)
        chunk = snapshot.chunks([best])[best]
        coverage = self.keyword_coverage(query, chunk)
        return high - (high - low) * coverage

    def _by_wording(self, snapshot: Snapshot, query: Query,
                    ranked: list[Candidate]) -> list[Candidate]:
        """The best few re-ranked with the share of the question's words they hold in
        its order and in their title (qa.passage_features.wording_bonuses)."""
        settings = self.config.retrieval
        head = ranked[:settings.wording_depth]
        weights = (settings.in_order_weight, settings.title_weight)
        if sum(weights) <= 0 or not head:
            return ranked
        chunks = snapshot.chunks([c.chunk_id for c in head])
        texts = {i: _with_heading(c) for i, c in chunks.items()}
        titles = {i: c.title for i, c in chunks.items()}
        return add_bonuses(ranked, wording_bonuses(query.text, query.idf, texts, titles, weights),
                           sum(weights))

    def keyword_coverage(self, query: Query, chunk: StoredChunk) -> float:
        """Share of the question's idf mass whose words appear in the chunk (with its
        title and section)."""
        total = sum(query.idf.values())
        if total <= 0:
            return 0.0
        present = set(self.tokenizer.tokens(_with_heading(chunk)))
        return sum(w for t, w in query.idf.items() if t in present) / total

    def _complete(
        self,
        snapshot: Snapshot,
        query: Query,
        vector: dict[int, float],
        keyword: dict[int, float],
        only: list[int] | None = None,
    ) -> None:
        """Fill in each candidate's missing score, so every candidate has both."""
        ids = only if only is not None else sorted(set(vector) | set(keyword))
        missing_vector = [i for i in ids if i not in vector]
        if missing_vector:
            scores = snapshot.vectors(missing_vector) @ query.vector
            vector.update(zip(missing_vector, map(float, scores), strict=True))
        missing_keyword = [i for i in ids if i not in keyword]
        if missing_keyword:
            found = dict(snapshot.keyword_search(
                query.tokens, len(missing_keyword), among=missing_keyword))
            keyword.update({i: found.get(i, 0.0) for i in missing_keyword})

    def ask(self, question: str, top_k: int | None = None, mode: str | None = None,
            filters: Filters = NO_FILTERS, sort: str = "relevance") -> Answer:
        """The best passages for a question, best first (or the best, newest first)."""
        started = time.perf_counter()
        question = self.validate_question(question)
        top_k = self.validate_top_k(self.config.retrieval.top_k if top_k is None else top_k)
        mode = self.validate_mode(mode or self.config.retrieval.mode)
        settings = self.config.retrieval
        # Fetch deeper than top_k: wire copies fold into one result, and another chunk
        # of a shown document may stand for it (qa.passage_choice).
        depth = max(top_k, settings.candidates)
        with self.engine.snapshot() as snapshot:
            query, keyword_hits = self._prepare_and_search_keywords(
                question, mode, depth, snapshot, filters)
            ranked = self.rank(query, mode, depth, snapshot, filters, keyword_hits)
            chunks = snapshot.chunks([c.chunk_id for c in ranked])
            matched = snapshot.matching_documents(filters)
        found = [(chunks[c.chunk_id], c) for c in ranked if c.chunk_id in chunks]
        groups = self._groups(found, top_k)
        # Confidence stays judged on the chunks that ranked at each place, as calibrated.
        ranked_found = found
        with self.stages.timed("highlight"):
            order, scored = self.stand_ins(
                query, found, [found[group[0]][0].doc_id for group in groups[:top_k]])
            if order != list(range(len(found))):
                # A stand-in takes its document's place, and with it its score.
                found = [(found[old][0], dataclasses.replace(found[old][1], score=c.score))
                         for old, (_, c) in zip(order, found, strict=True)]
                scored = {new: scored[old] for new, old in enumerate(order) if old in scored}
                groups = self._groups(found, top_k)
            leaders = [group[0] for group in groups[:top_k]]
            highlights = self.highlights_for(query, found, leaders, scored)
        copies = [tuple(_citation(found[i][0]) for i in group[1:]) for group in groups[:top_k]]
        found = [found[i] for i in leaders]
        ranked_found = [ranked_found[i] for i in leaders]
        if sort == "date":
            # The best k by relevance, shown newest first; undated ones last.
            order = sorted(range(len(found)), key=lambda i: found[i][0].date or "",
                           reverse=True)
            found = [found[i] for i in order]
            ranked_found = [ranked_found[i] for i in order]
            copies = [copies[i] for i in order]
            highlights = [highlights[i] for i in order]
        passages = [
            Passage(rank, c.score, chunk.text, highlight, _citation(chunk), c.vector, c.keyword,
                    also_in)
            for rank, ((chunk, c), highlight, also_in) in enumerate(
                zip(found, highlights, copies, strict=True), start=1
            )
        ]
        took_ms = (time.perf_counter() - started) * 1000
        return Answer(question, took_ms, passages, mode, self.is_confident(query, ranked_found),
                      filters=filters, sort=sort, documents_matched=matched)

    def is_confident(self, query: Query, found: list[tuple[StoredChunk, Candidate]]) -> bool:
        """Whether the best passage looks like an answer rather than the least bad match."""
        if not found:
            return False
        similarity, coverage = self.confidence_features(query, *found[0])
        settings = self.config.retrieval
        return (similarity >= settings.confident_similarity
                or coverage >= settings.confident_coverage)

    def confidence_features(
        self, query: Query, chunk: StoredChunk, candidate: Candidate
    ) -> tuple[float, float]:
        """(cosine similarity, keyword coverage) of the best passage.

        An off-topic question's words are rare or absent in the index, so little
        of their weight is found even in the best passage, and its cosine is low.
        """
        return candidate.vector, self.keyword_coverage(query, chunk)

    def _groups(self, found: list[tuple[StoredChunk, Candidate]], top_k: int) -> list[list[int]]:
        """The candidates as results: wire copies folded into their best-ranked copy
        (qa.duplicates) unless turned off."""
        settings = self.config.retrieval
        if not settings.collapse_duplicates:
            return [[i] for i in range(len(found))]
        return group_duplicates([chunk.text for chunk, _ in found],
                                settings.duplicate_similarity, limit=top_k)

    def stand_ins(
        self, query: Query, found: list[tuple[StoredChunk, Candidate]], documents: list[str]
    ) -> tuple[list[int], dict[int, tuple[Span, float]]]:
        """Which chunk stands for each of `documents` (qa.passage_choice.stand_ins); a
        close call in the first is settled with the model when
        `retrieval.meaning_sentences` asks for it."""
        return stand_ins(query.text, query.idf, self.tokenizer, found, documents,
                         self._sentence_similarity(query),
                         self.config.retrieval.meaning_sentences)

    def _sentence_similarity(self, query: Query) -> Callable[[list[str]], list[float]]:
        """Sentences -> their cosines to the question (each embedded alone, kept)."""

        def similarity(sentences: list[str]) -> list[float]:
            return (self.sentence_vectors.vectors(sentences) @ query.vector).tolist()

        return similarity

    def highlights_for(
        self, query: Query, found: list[tuple[StoredChunk, Candidate]], positions: list[int],
        scored: dict[int, tuple[Span, float]],
    ) -> list[Span]:
        """The answering sentence of the candidates at `positions`: from `scored`
        (stand_ins) where the passage shares words with the question, otherwise by
        qa.highlight with the model's sentence similarity."""
        spans = {i: scored[i][0] for i in positions if i in scored and scored[i][1] > 0}
        rest = [i for i in positions if i not in spans]
        if rest:
            spans.update(zip(rest, self._highlights(query, [found[i][0] for i in rest]),
                             strict=True))
        return [spans[i] for i in positions]

    def _highlights(self, query: Query, chunks: list[StoredChunk]) -> list[Span]:
        """The answering sentence of each passage (qa.highlight)."""
        return answer_spans(query.text, query.idf, self.tokenizer,
                            [chunk.text for chunk in chunks], self._sentence_similarity(query))


def _with_heading(chunk: StoredChunk) -> str:
    """A chunk's text after its document's title and its section, as keywords see it."""
    return "\n".join(part for part in (chunk.title, chunk.section, chunk.text) if part)


class StageTimer:
    """Times the stages of a question and hands each duration to `observe`, if set."""

    STAGES = ("embed", "vector_search", "keyword_search", "fusion", "highlight")

    def __init__(self) -> None:
        self.observe: Callable[[str, float], None] | None = None

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            if self.observe is not None:
                self.observe(stage, time.perf_counter() - started)


def _with_terms(question: str, terms: str) -> str:
    return f"{question} {terms}" if terms else question


def _citation(chunk: StoredChunk) -> Citation:
    return Citation(
        doc_id=chunk.doc_id,
        title=chunk.title,
        source=chunk.source,
        date=chunk.date,
        url=chunk.url,
        section=chunk.section,
        paragraph=chunk.paragraph,
        paragraph_start=chunk.paragraph,
        paragraph_end=chunk.paragraph_end,
        char_start=chunk.char_start,
        char_end=chunk.char_end,
    )
