"""`qa check` for the Milvus engine: the side store and the collection must hold the same
chunks, and the recorded counts and BM25 statistics must be right; `--repair` deletes
collection rows of no chunk (left by an interrupted commit) and fixes the counts."""

from __future__ import annotations

import json

from qa.config import Config
from qa.errors import QAError
from qa.index import milvus_bm25
from qa.index.check import CheckResult
from qa.index.milvus_layout import leftovers
from qa.index.milvus_side import SideWriter
from qa.index.store import connect, transaction


def check_milvus(config: Config) -> CheckResult:
    """Every problem found in the configured Milvus index; never changes anything."""
    from qa.index.milvus_engine import MilvusEngine

    result = CheckResult()
    try:
        engine = MilvusEngine(config)
    except QAError as exc:
        result.problems.append(str(exc))
        return result
    try:
        db = connect(engine.side_path, readonly=True)
        try:
            with transaction(db, immediate=False):
                reader = SideWriter(db)
                result.generation = reader.generation()
                result.documents, result.chunks = reader.counts()
                actual = (db.execute("SELECT COUNT(*) FROM documents").fetchone()[0],
                          db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
                chunks = {r[0] for r in db.execute("SELECT id FROM chunks")}
                pending = set(reader.pending_removals())
                rows = engine.milvus_ids(reader.last_chunk_id())
                statistics = (milvus_bm25.statistics_problems(db)
                              if reader.keeps_statistics else None)
        finally:
            db.close()
        collections, files = leftovers(engine.client, config.milvus)
    finally:
        engine.close()
    if collections or files:
        result.notes.append(f"{len(collections)} collections and {len(files)} side store files "
                            "of an interrupted rebuild (the next `qa index` drops them)")
    if statistics is None:
        result.notes.append("the side store keeps no BM25 statistics (made before they were "
                            "kept): keyword scores are Milvus' own; `qa index --rebuild` "
                            "makes exact ones")
    for problem in statistics or []:
        result.problems.append(f"BM25 statistics: {problem}; run `qa index --rebuild`")
    if actual != (result.documents, result.chunks):
        result.problems.append(
            f"the recorded counts ({result.documents} documents, {result.chunks} chunks) "
            f"disagree with the side store {actual}; `qa check --repair` fixes them")
    if missing := len(chunks - rows):
        result.problems.append(f"{missing} chunks have no row in the Milvus collection "
                               "(run `qa index --rebuild`)")
    extra = rows - chunks
    if waiting := len(extra & pending):
        result.notes.append(f"{waiting} rows of removed chunks are still in Milvus (the next "
                            "change or `qa check --repair` deletes them)")
    if stray := len(extra - pending):
        result.problems.append(f"{stray} rows in the Milvus collection belong to no chunk "
                               "(an interrupted commit); `qa check --repair` deletes them")
    return result


def repair_milvus(config: Config) -> list[str]:
    """Delete collection rows of no chunk and fix the counts; returns what was done."""
    from qa.index.milvus_engine import MilvusEngine

    done: list[str] = []
    engine = MilvusEngine(config)
    db = connect(engine.side_path, readonly=False)
    try:
        writer = SideWriter(db)
        with transaction(db):  # holds off writers while Milvus and the store are compared
            chunks = {r[0] for r in db.execute("SELECT id FROM chunks")}
            extra = sorted(engine.milvus_ids(writer.last_chunk_id()) - chunks)
            for start in range(0, len(extra), 512):
                engine.client.delete(engine.name, ids=extra[start:start + 512])
            if extra:
                done.append(f"deleted {len(extra)} Milvus rows of no chunk")
            db.execute("DELETE FROM removed_chunks")
            for key, table in (("documents", "documents"), ("chunks", "chunks")):
                count = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                db.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(count), key))
    finally:
        db.close()
        engine.close()
    return done
