"""Retrieval quality on SQuAD-format question sets: recall@k, MRR@10, nDCG@10, sentence@1,
latency.

Every paragraph (`context`) of all the files given becomes one document in a
temporary index built through the real pipeline (loader types, chunker, embedder,
keyword index), so the files share one pool; its article's `title` is the
document's title, as a loaded article's headline is (embedded before each chunk and
searched by keywords, as `chunking.embed_title` and `keyword_title` say; stored);
each question is then asked, and
the rank of the paragraph it was written about is recorded. sentence@1 is the
share of questions (with gold answers) whose rank-1 passage is from the right
paragraph and whose marked sentence holds one of the gold answers, both folded
the way the product folds text for matching.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qa.config import MODES, Config
from qa.embedder import Embedder
from qa.errors import QAError
from qa.fusion import Candidate
from qa.index.engines import discard_scratch, scratch_config
from qa.index.saved_index import build_index_from_documents, open_index
from qa.index.store import StoredChunk
from qa.ingest.document import Block, Document
from qa.normalize import fold
from qa.retriever import Query, Retriever

CUTOFFS = (1, 5, 10)
# Chunks fetched per question: enough to fill ten distinct paragraphs.
CHUNK_DEPTH = 50

Progress = Callable[[str, int, int], None]
"""Called with (stage, done, total)."""


@dataclass(frozen=True)
class EvalQuestion:
    file: str
    question: str
    paragraph_id: str
    # Gold answer texts (SQuAD `answers[].text`); may be empty.
    answers: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalSet:
    documents: list[Document]
    questions: list[EvalQuestion]
    paragraphs_per_file: dict[str, int]


def read_squad(paths: list[Path]) -> EvalSet:
    """Paragraphs and questions of SQuAD-format files (`data[].paragraphs[].qas[]`)."""
    documents: list[Document] = []
    questions: list[EvalQuestion] = []
    paragraphs_per_file: dict[str, int] = {}
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))["data"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise QAError(f"{path} is not a readable SQuAD-format file: {exc}") from None
        count = 0
        for a, article in enumerate(data):
            title = str(article.get("title") or "").strip() or None
            for p, paragraph in enumerate(article.get("paragraphs", [])):
                context = str(paragraph.get("context", "")).strip()
                if not context:
                    continue
                doc_id = f"{path.stem}-{a}-{p}"
                documents.append(Document(doc_id, str(path), (Block(context),), title=title))
                count += 1
                for qa in paragraph.get("qas", []):
                    question = str(qa.get("question", "")).strip()
                    answers = tuple(dict.fromkeys(
                        str(a.get("text", "")).strip() for a in qa.get("answers") or []
                        if isinstance(a, dict) and str(a.get("text", "")).strip()))
                    if question:
                        questions.append(EvalQuestion(path.name, question, doc_id, answers))
        paragraphs_per_file[path.name] = count
    return EvalSet(documents, questions, paragraphs_per_file)


def paragraph_ranking(chunk_doc_ids: list[str], depth: int = 10) -> list[str]:
    """Distinct paragraphs in the order their first chunk appears."""
    return list(dict.fromkeys(chunk_doc_ids))[:depth]


def paragraph_rank(chunk_doc_ids: list[str], gold: str, depth: int = 10) -> int | None:
    """The 1-based rank of paragraph `gold` among the first `depth` (None: not there)."""
    order = paragraph_ranking(chunk_doc_ids, depth)
    return order.index(gold) + 1 if gold in order else None


def sentence_holds_answer(sentence: str, answers: tuple[str, ...]) -> bool:
    """Whether the marked sentence contains any gold answer, compared folded."""
    folded = fold(sentence)
    return any(fold(answer) in folded for answer in answers)


def metrics(ranks: list[int | None]) -> dict[str, float]:
    """recall@1/5/10, MRR@10 and nDCG@10 from each question's 1-based rank (None: not found)."""
    n = len(ranks) or 1
    result = {f"recall@{k}": sum(r is not None and r <= k for r in ranks) / n for k in CUTOFFS}
    result["mrr@10"] = sum(1 / r for r in ranks if r is not None and r <= 10) / n
    result["ndcg@10"] = sum(1 / math.log2(r + 1) for r in ranks if r is not None and r <= 10) / n
    return result


def evaluate(
    paths: list[Path],
    config: Config,
    embedder: Embedder,
    modes: tuple[str, ...] = MODES,
    progress: Progress | None = None,
) -> list[dict[str, object]]:
    """Index the files' paragraphs as one pool, ask every question in every mode, score."""
    evalset = read_squad(paths)
    if not evalset.questions:
        raise QAError("the files hold no questions")
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as folder:
        eval_config = scratch_config(config, Path(folder))
        try:
            build_index_from_documents(
                eval_config, embedder, evalset.documents, eval_config.index_dir,
                progress=(lambda d, t: progress("embedding", d, t)) if progress else None,
                source=", ".join(p.name for p in paths),
            )
            engine = open_index(eval_config)
            try:
                # Questions and sentences are embedded as `ask` embeds them: each alone,
                # never read from the cache (whose vectors may come from a batch).
                retriever = Retriever(eval_config, engine, getattr(embedder, "inner", embedder))
                ranks, latencies, sentences = _ask_all(
                    retriever, evalset.questions, modes, progress)
            finally:
                engine.close()
        finally:
            discard_scratch(eval_config)
    results = []
    for file, paragraphs in evalset.paragraphs_per_file.items():
        positions = [i for i, q in enumerate(evalset.questions) if q.file == file]
        if not positions:
            continue
        for mode in modes:
            row: dict[str, object] = {
                "file": file, "mode": mode, "questions": len(positions),
                "paragraphs": paragraphs, "pool": len(evalset.documents),
            }
            row.update({k: round(v, 4) for k, v in
                        metrics([ranks[mode][i] for i in positions]).items()})
            answered = [sentences[mode][i] for i in positions
                        if evalset.questions[i].answers]
            row["sentence@1"] = round(sum(answered) / len(answered), 4) if answered else None
            row["latency_ms_p50"] = round(
                statistics.median(latencies[mode][i] for i in positions), 2)
            results.append(row)
    return results


def _ask_all(
    retriever: Retriever,
    questions: list[EvalQuestion],
    modes: tuple[str, ...],
    progress: Progress | None,
) -> tuple[dict[str, list[int | None]], dict[str, list[float]], dict[str, list[bool]]]:
    """Each question's paragraph rank, latency and sentence@1 hit, per mode.

    Each question is embedded alone, as `ask` embeds it: with the int8 model a vector
    embedded in a batch differs a little from the lone one (activations are quantised
    per batch), enough to tip the close calls qa.meaning_choice settles. The latency of
    a question is the time to embed it plus its ranking time.
    """
    texts = [retriever.validate_question(q.question) for q in questions]
    vectors, embed_ms = [], []
    for text in texts:
        started = time.perf_counter()
        vectors.append(retriever.embedder.embed_queries([retriever.embedding_text(text)])[0])
        embed_ms.append((time.perf_counter() - started) * 1000)
    ranks: dict[str, list[int | None]] = {mode: [] for mode in modes}
    latencies: dict[str, list[float]] = {mode: [] for mode in modes}
    sentences: dict[str, list[bool]] = {mode: [] for mode in modes}
    for done, (question, text, vector, embedded_ms) in enumerate(
        zip(questions, texts, vectors, embed_ms, strict=True), start=1
    ):
        started = time.perf_counter()
        with retriever.engine.snapshot() as snapshot:
            query = retriever.prepare(text, vector=vector, snapshot=snapshot)
        prepared_ms = (time.perf_counter() - started) * 1000 + embedded_ms
        for mode in modes:
            started = time.perf_counter()
            with retriever.engine.snapshot() as snapshot:
                ranked = retriever.rank(query, mode, CHUNK_DEPTH, snapshot)
                chunks = snapshot.chunks([c.chunk_id for c in ranked])
            rank = paragraph_rank([chunks[c.chunk_id].doc_id for c in ranked],
                                  question.paragraph_id)
            latencies[mode].append(prepared_ms + (time.perf_counter() - started) * 1000)
            ranks[mode].append(rank)
            sentences[mode].append(_sentence_hit(retriever, query, question, ranked, chunks))
        if progress:
            progress("questions", done, len(questions))
    return ranks, latencies, sentences


def _sentence_hit(
    retriever: Retriever,
    query: Query,
    question: EvalQuestion,
    ranked: list[Candidate],
    chunks: dict[int, StoredChunk],
) -> bool:
    """Whether the rank-1 passage is the right paragraph and its marked sentence holds
    a gold answer (outside the latency timing: `ask` marks only the top k)."""
    if not ranked or not question.answers:
        return False
    found = [(chunks[c.chunk_id], c) for c in ranked]
    if found[0][0].doc_id != question.paragraph_id:
        return False
    # As `ask` does: another chunk of the document may stand for it (qa.passage_choice).
    order, scored = retriever.stand_ins(query, found, [found[0][0].doc_id])
    top = found[order[0]][0]
    start, end = retriever.highlights_for(query, found, [order[0]], scored)[0]
    return sentence_holds_answer(top.text[start:end], question.answers)
