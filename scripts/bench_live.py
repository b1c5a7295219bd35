"""Measure the live archive: adding one article to a large index, and how soon a running
server answers from it.

    .venv/bin/python scripts/bench_live.py [--copies 2] [--repeat 5] [--json out.json]

1. Builds an index of CMRC 2018 dev+trial and DRCD dev paragraphs (`--copies` times, under
   other ids) in a temporary folder. Their vectors come from a stand-in embedder with the
   real model's name and dimension, so the build takes a minute instead of an hour; the
   store, FAISS and keyword index are the real ones, which is what adding costs.
2. Loads the real model and adds one article (a shipped corpus file, made new each time)
   through the library: total time, the model's share, and the rest (chunking, jieba,
   one SQLite transaction, FAISS).
3. Serves that index with cheroot (the real app) and measures, for an article added
   through the write API and for one committed by another process, the time from the
   acknowledgement until the server's answers contain it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np
from script_setup import REPO as ROOT  # noqa: E402 - this checkout's qa first
from script_setup import SETS  # noqa: E402

from qa.config import load_config  # noqa: E402
from qa.embedder import SentenceTransformerEmbedder  # noqa: E402
from qa.evaluation import read_squad  # noqa: E402
from qa.index.indexer import Indexer  # noqa: E402
from qa.index.saved_index import build_index_from_documents, open_index  # noqa: E402
from qa.ingest.loader import load_file  # noqa: E402
from qa.retriever import Retriever  # noqa: E402
from qa.web import create_app  # noqa: E402
from qa.web.server import ServerThread, make_server  # noqa: E402

KEY = "bench-key"

# Another process committing one document whose vectors are in a .npy file.
OTHER_PROCESS = """
import sys, time, json
import numpy as np
from qa.config import load_config
from qa.index.engine import PutDocument
from qa.index.local_engine import LocalEngine
from qa.ingest.chunker import chunk_document
from qa.ingest.document import Block, Document
from qa.tokenizer import Tokenizer
config = load_config(sys.argv[1])
engine = LocalEngine(config)
document = Document(doc_id=sys.argv[2], path="bench", blocks=(Block(sys.argv[3]),),
                    title="基准测试文章")
chunks = chunk_document(document, config.chunking)
vectors = np.load(sys.argv[4])[: len(chunks)]
tokens = [Tokenizer(config.keywords.user_words).tokens(c.text) for c in chunks]
engine.commit([PutDocument(document, chunks, vectors, tokens, "bench")])
print(json.dumps({"committed_at": time.time()}), flush=True)
engine.close()
"""


class StandIn:
    """The real model's name and dimension, vectors from a seeded generator."""

    def __init__(self, name: str, dimension: int):
        self.name, self.dimension = name, dimension
        self._random = np.random.default_rng(0)

    def embed_passages(self, texts, progress=None):
        vectors = self._random.standard_normal((len(texts), self.dimension)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    embed_queries = embed_passages


class Timed:
    """The real model, remembering how long its last passage embedding took."""

    def __init__(self, inner):
        self.inner, self.name, self.dimension = inner, inner.name, inner.dimension
        self.seconds = 0.0

    def embed_passages(self, texts, progress=None):
        started = time.perf_counter()
        vectors = self.inner.embed_passages(texts, progress)
        self.seconds = time.perf_counter() - started
        return vectors

    def embed_queries(self, texts):
        return self.inner.embed_queries(texts)


def answers_contain(base: str, question: str, doc_id: str) -> bool:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request("GET", f"/api/ask?q={quote(question)}&k=10&mode=keyword")
    body = json.loads(connection.getresponse().read())
    connection.close()
    return any(p["citation"]["doc_id"] == doc_id for p in body["passages"])


def wait_until_found(base: str, question: str, doc_id: str, since: float) -> float:
    deadline = time.time() + 30
    while time.time() < deadline:
        if answers_contain(base, question, doc_id):
            return time.time() - since
        time.sleep(0.005)
    raise RuntimeError(f"{doc_id} never showed up")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config.yaml"))
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    results: dict[str, object] = {"command": " ".join(sys.argv)}
    with tempfile.TemporaryDirectory(prefix="qa-bench-live-") as folder:
        config = load_config(args.config).replace(index_dir=Path(folder) / "index")
        model = SentenceTransformerEmbedder(config.model)
        base_documents = read_squad(SETS).documents
        documents = [replace(d, doc_id=f"{d.doc_id}-copy{n}") for n in range(args.copies)
                     for d in base_documents]
        started = time.perf_counter()
        build_index_from_documents(config, StandIn(model.name, model.dimension), documents,
                                   config.index_dir)
        engine = open_index(config)
        results["index"] = engine.status() | {"build_seconds": round(
            time.perf_counter() - started, 1)}
        print(f"index: {results['index']}", flush=True)

        timed = Timed(model)
        retriever = Retriever(config, engine, timed)
        indexer = Indexer(config, engine, lambda: timed, tokenizer=retriever.tokenizer)
        article = load_file(ROOT / "corpus/003_f6f549922cc68d70.txt")[0]
        totals, embeds = [], []
        for n in range(args.repeat):
            fresh = replace(article, doc_id=f"bench-add-{n}",
                            title=f"{article.title}（第{n}次）")
            started = time.perf_counter()
            status, chunks = indexer.put_document(fresh)
            totals.append(time.perf_counter() - started)
            embeds.append(timed.seconds)
            print(f"add {n}: {status}, {chunks} passages, {totals[-1]:.3f} s "
                  f"(model {embeds[-1]:.3f} s)", flush=True)
        rest = [t - e for t, e in zip(totals, embeds, strict=True)]
        results["add_one_article"] = {
            "passages": chunks,
            "total_s_median": round(statistics.median(totals), 3),
            "model_s_median": round(statistics.median(embeds), 3),
            "rest_s_median": round(statistics.median(rest), 3),
            "rest_s_max": round(max(rest), 3),
        }

        os.environ["QA_API_KEYS"] = KEY
        server = ServerThread(make_server(create_app(config, retriever), "127.0.0.1", 0,
                                          4)).start()
        try:
            api_delays, other_delays = [], []
            vectors_file = Path(folder) / "vectors.npy"
            np.save(vectors_file, model.embed_passages(["基准测试文章的正文"] * 4))
            for n in range(args.repeat):
                word = f"基准测试第{n}号特别词汇"
                body = json.dumps({"doc_id": f"bench-api-{n}", "title": "基准测试",
                                   "text": f"{word}出现在这篇文章里。"}).encode()
                parts = urlsplit(server.url)
                connection = http.client.HTTPConnection(parts.hostname, parts.port)
                connection.request("POST", "/api/documents", body, {
                    "Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
                assert connection.getresponse().status == 201
                acknowledged = time.time()
                connection.close()
                api_delays.append(wait_until_found(server.url, word, f"bench-api-{n}",
                                                   acknowledged))
                word = f"另一进程第{n}号特别词汇"
                config_file = Path(folder) / "config.yaml"
                config_file.write_text(
                    Path(args.config).read_text(encoding="utf-8")
                    + f"\nindex_dir: {config.index_dir}\n", encoding="utf-8")
                other = subprocess.run(
                    [sys.executable, "-c", OTHER_PROCESS, str(config_file),
                     f"bench-other-{n}", f"{word}出现在另一进程写入的文章里。",
                     str(vectors_file)], cwd=ROOT, capture_output=True, text=True,
                    timeout=120)
                if other.returncode != 0:
                    raise RuntimeError(other.stderr)
                committed = json.loads(other.stdout.splitlines()[-1])["committed_at"]
                other_delays.append(wait_until_found(server.url, word, f"bench-other-{n}",
                                                     committed))
                print(f"visible: API {api_delays[-1]:.3f} s, other process "
                      f"{other_delays[-1]:.3f} s", flush=True)
        finally:
            server.stop()
            engine.close()
        results["visible_after_s"] = {
            "write_api_median": round(statistics.median(api_delays), 3),
            "write_api_max": round(max(api_delays), 3),
            "other_process_median": round(statistics.median(other_delays), 3),
            "other_process_max": round(max(other_delays), 3),
        }
    print(json.dumps(results, ensure_ascii=False, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, ensure_ascii=False, indent=2),
                                 encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
