"""Compare fusion methods on SQuAD-format dev files, from one set of candidate lists.

Builds the pool once (embeddings come from the cache that `qa eval` fills), takes
each question's top candidates from both indexes with both scores (and how much
of its keyword weight the best keyword match holds), then ranks them with every
method/weight in the grid. Prints recall@1 / MRR@10 per method. `--dump FILE`
keeps the candidates so that `--load FILE` can try new methods in seconds.

    .venv/bin/python scripts/tune_fusion.py ../shared/benchmarks/drcd/DRCD_dev.json
    .venv/bin/python scripts/tune_fusion.py --shipped benchmarks/shipped_dev_questions.jsonl
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
from pathlib import Path

import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa import fusion
from qa.cli import cached, load_embedder
from qa.config import load_config
from qa.evaluation import EvalQuestion, EvalSet, metrics, paragraph_rank, read_squad
from qa.highlight import _QUESTION_PHRASE as QUESTION_PHRASE
from qa.index.saved_index import build_index_from_documents, open_index
from qa.ingest.loader import load_corpus
from qa.retriever import Query, Retriever


def shipped_set(config, path: Path) -> EvalSet:
    """The shipped corpus's documents and the questions of a JSONL file
    ({"question", "answer", "doc_id"}), as an eval set: real news, several reports
    per file, headlines and sections as the product reads them."""
    documents = load_corpus(config.corpus_dir, config.ingest).documents
    cases = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
    questions = [EvalQuestion(path.name, c["question"], c["doc_id"], (c["answer"],))
                 for c in cases]
    return EvalSet(documents, questions, {path.name: len(documents)})


def squad_titles(paths: list[Path]) -> dict[str, str]:
    """Each paragraph's article title (`data[].title`), keyed as read_squad keys
    paragraphs (the title `qa eval` indexes with them)."""
    titles = {}
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8-sig"))["data"]
        for a, article in enumerate(data):
            for p, _ in enumerate(article.get("paragraphs", [])):
                titles[f"{path.stem}-{a}-{p}"] = str(article.get("title") or "")
    return titles


def without_question_words(query: Query) -> Query:
    """The query less the tokens inside a question phrase (什么时候, 多少, 哪一年…):
    rare in news text, so they weigh much in BM25 without being evidence."""
    phrases = [m.group() for m in QUESTION_PHRASE.finditer(query.text)]
    keep = [t for t in query.tokens if not any(t in phrase for phrase in phrases)]
    if not keep:
        return query
    return Query(query.text, query.vector, keep, {t: w for t, w in query.idf.items()
                                                  if t in keep})


def collect(paths: list[Path], config_path: str, dump: Path | None,
            shipped: Path | None = None, drop_question_words: bool = False):
    config = load_config(config_path)
    evalset = shipped_set(config, shipped) if shipped else read_squad(paths)
    embedder = cached(load_embedder(config), config)
    rows = []
    extras = []
    with tempfile.TemporaryDirectory() as folder:
        index_dir = Path(folder) / "index"
        build_index_from_documents(config, embedder, evalset.documents, index_dir)
        eval_config = config.replace(index_dir=index_dir)
        index = open_index(eval_config)
        retriever = Retriever(eval_config, index, embedder)
        with index.snapshot() as snapshot:
            ids = [row[0] for row in snapshot.db.execute("SELECT id FROM chunks")]
            stored = snapshot.chunks(ids)
        doc_of = {chunk_id: chunk.doc_id for chunk_id, chunk in stored.items()}
        texts = {chunk_id: "\n".join(p for p in (c.title, c.section, c.text) if p)
                 for chunk_id, c in stored.items()}
        vectors = embedder.embed_queries(
            [retriever.embedding_text(q.question) for q in evalset.questions])
        for n, (question, vector) in enumerate(zip(evalset.questions, vectors, strict=True)):
            with index.snapshot() as snapshot:
                query = retriever.prepare(question.question, vector=vector, snapshot=snapshot)
                if drop_question_words:
                    query = without_question_words(query)
                v = dict(snapshot.vector_search(query.vector, 50))
                k = dict(snapshot.keyword_search(query.tokens, 50))
                retriever._complete(snapshot, query, v, k)
            coverage = 0.0
            if k:
                best = max(k, key=k.__getitem__)
                coverage = retriever.keyword_coverage(query, stored[best])
            rows.append((question.file, question.paragraph_id, v, k, coverage))
            extras.append({"question": question.question, "tokens": query.tokens,
                           "idf": query.idf, "answers": question.answers})
            if n % 500 == 0:
                print(f"{n}/{len(evalset.questions)}", file=sys.stderr)
    if dump:
        # rows and doc_of as before; extras (question text, tokens, idf, answers per row)
        # and the chunk texts let scripts/fusion_features.py compute more features offline.
        # Titles (doc id -> article title) last, for a title-match feature.
        titles = ({d.doc_id: d.title or "" for d in evalset.documents} if shipped
                  else squad_titles(paths))
        dump.write_bytes(pickle.dumps((rows, doc_of, extras, texts, titles)))
    return rows, doc_of


def score(rows, doc_of, rank_fn):
    ranks = []
    for _file, gold, v, k, coverage in rows:
        ranked = rank_fn(v, k, coverage)
        ranks.append(paragraph_rank([doc_of[c.chunk_id] for c in ranked], gold))
    return metrics(ranks)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--shipped", type=Path,
                        help="a JSONL of questions about the shipped corpus (instead of files)")
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--dump", type=Path)
    parser.add_argument("--drop-question-words", action="store_true",
                        help="leave question phrases (什么时候, 多少…) out of the keyword query")
    parser.add_argument("--load", type=Path)
    args = parser.parse_args()
    if args.load:
        rows, doc_of = pickle.loads(args.load.read_bytes())[:2]
    else:
        rows, doc_of = collect(args.files, args.config, args.dump, args.shipped,
                               args.drop_question_words)
    methods = {
        "vector": lambda v, k, c: fusion.single(v, k, "vector"),
        "keyword": lambda v, k, c: fusion.single(v, k, "keyword"),
    }
    for w in (0.2, 0.3, 0.4, 0.5, 0.6):
        methods[f"blend {w}"] = lambda v, k, c, w=w: fusion.blend(v, k, w)
    for w in (0.3, 0.4, 0.5):
        methods[f"rrf {w}"] = lambda v, k, c, w=w: fusion.reciprocal_rank(v, k, w)
    # The product's per-question weight: from `high` down to `low` as the best
    # keyword match holds more of the question's idf weight (Retriever._vector_weight).
    for low, high in ((0.2, 0.6), (0.25, 0.6), (0.3, 0.6), (0.3, 0.7)):
        methods[f"adaptive {low}-{high}"] = (
            lambda v, k, c, low=low, high=high: fusion.blend(v, k, high - (high - low) * c))
    files = sorted({r[0] for r in rows})
    print(f"{'method':<22}" + "".join(f"{f[:14]:>16}{'':>8}" for f in files))
    for name, fn in methods.items():
        cells = []
        for f in files:
            m = score([r for r in rows if r[0] == f], doc_of, fn)
            cells.append(f"{m['recall@1']:>16.4f}{m['mrr@10']:>8.4f}")
        print(f"{name:<22}" + "".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
