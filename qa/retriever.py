"""Question -> ranked passages with citations and the answering sentence marked."""

from __future__ import annotations

import logging
import time

import numpy as np

from qa.answer import Answer, Citation, Passage
from qa.config import Config
from qa.embedder import Embedder
from qa.errors import IndexMismatchError, InvalidQuestionError
from qa.highlight import best_span, overlap_scores, passage_sentences
from qa.index.saved_index import OpenIndex, check_manifest
from qa.index.store import StoredChunk

logger = logging.getLogger(__name__)

# Sentences are embedded to find the answering one only when no question term
# appears in the passage (an English question, say), and only for the first few
# passages: it costs a model call.
SEMANTIC_HIGHLIGHT_PASSAGES = 5


class Retriever:
    """Answers questions from an open index with one embedding model."""

    def __init__(self, config: Config, index: OpenIndex, embedder: Embedder):
        if embedder.dimension != index.vectors.dimension:
            raise IndexMismatchError(
                f"the model gives {embedder.dimension}-dimensional vectors but the index "
                f"holds {index.vectors.dimension}; run `qa index` to rebuild it"
            )
        check_manifest(index.manifest, config, embedder.dimension)
        self.config = config
        self.index = index
        self.embedder = embedder

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

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        """The best passages for a question, best first."""
        started = time.perf_counter()
        question = self.validate_question(question)
        top_k = self.validate_top_k(self.config.retrieval.top_k if top_k is None else top_k)
        query = self.embedder.embed_queries([question])[0]
        hits = self.index.vectors.search(query, top_k)
        chunks = self.index.store.chunks([chunk_id for chunk_id, _ in hits])
        ranked = [(chunks[i], score) for i, score in hits if i in chunks]
        highlights = self._highlights(question, query, [chunk for chunk, _ in ranked])
        passages = [
            Passage(rank, score, chunk.text, highlight, _citation(chunk))
            for rank, ((chunk, score), highlight) in enumerate(
                zip(ranked, highlights, strict=True), start=1
            )
        ]
        took_ms = (time.perf_counter() - started) * 1000
        return Answer(question, took_ms, passages)

    def _highlights(
        self, question: str, query: np.ndarray, chunks: list[StoredChunk]
    ) -> list[tuple[int, int]]:
        spans_per_chunk = [passage_sentences(chunk.text) for chunk in chunks]
        results: list[tuple[int, int]] = []
        needs_model: list[int] = []
        for position, (chunk, spans) in enumerate(zip(chunks, spans_per_chunk, strict=True)):
            scores = overlap_scores(question, [chunk.text[s:e] for s, e in spans])
            results.append(best_span(spans, scores))
            if max(scores) == 0 and len(spans) > 1 and position < SEMANTIC_HIGHLIGHT_PASSAGES:
                needs_model.append(position)
        if needs_model:
            sentences = [
                chunks[p].text[s:e] for p in needs_model for s, e in spans_per_chunk[p]
            ]
            similarities = self.embedder.embed_passages(sentences) @ query
            cursor = 0
            for position in needs_model:
                count = len(spans_per_chunk[position])
                scores = similarities[cursor : cursor + count].tolist()
                results[position] = best_span(spans_per_chunk[position], scores)
                cursor += count
        return results


def _citation(chunk: StoredChunk) -> Citation:
    return Citation(
        doc_id=chunk.doc_id,
        title=chunk.title,
        source=chunk.source,
        date=chunk.date,
        url=chunk.url,
        section=chunk.section,
        paragraph=chunk.paragraph,
        char_start=chunk.char_start,
        char_end=chunk.char_end,
    )
