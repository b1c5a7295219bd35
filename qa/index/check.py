"""`qa check`: verify that every part of an index agrees, and repair what the store can
rebuild without the model (keyword entries, counts, the vector cache, the manifest,
leftovers of interrupted runs)."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.config import Config
from qa.errors import QAError
from qa.index import keywords, tantivy_keywords
from qa.index.layout import IndexFolder
from qa.index.manifest import (
    MANIFEST_FILE,
    check_manifest,
    read_manifest,
    write_manifest,
)
from qa.index.store import STORE_FILE, StoreReader, connect, transaction
from qa.ingest.chunker import keyword_text
from qa.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

# Leftovers are garbage of a crash, not damage: reported, and removed by the next writer.
LEFTOVER_NOTE = "leftover of an interrupted run (the next `qa index` or `qa check --repair` " \
                "removes it)"


@dataclass
class CheckResult:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    generation: int = 0


def check_index(config: Config) -> CheckResult:
    """Every problem found in the configured index; never changes anything."""
    if config.engine == "milvus":
        from qa.index.milvus_check import check_milvus

        return check_milvus(config)
    result = CheckResult()
    folder = IndexFolder(config.index_dir)
    try:
        store_dir = folder.require_store()
    except QAError as exc:
        result.problems.append(str(exc))
        return result
    result.notes.extend(f"{path}: {LEFTOVER_NOTE}" for path in folder.leftovers())
    manifest = _check_manifest(store_dir, config, result)
    try:
        db = connect(store_dir / STORE_FILE, readonly=True)
    except QAError as exc:
        result.problems.append(str(exc))
        return result
    try:
        _check_store(db, manifest, config, result)
    except sqlite3.DatabaseError as exc:
        result.problems.append(f"the store {store_dir / STORE_FILE} is unreadable ({exc}); "
                               "run `qa index --rebuild`")
    finally:
        db.close()
    if not result.problems:
        _check_vector_cache(config, result)
    return result


def _check_manifest(store_dir: Path, config: Config, result: CheckResult) -> dict | None:
    try:
        manifest = read_manifest(store_dir)
        check_manifest(manifest, config, dimension=None)
    except QAError as exc:
        result.problems.append(str(exc))
        return None
    return manifest


def _check_store(db: sqlite3.Connection, manifest: dict | None, config: Config,
                 result: CheckResult) -> None:
    verdict = [row[0] for row in db.execute("PRAGMA quick_check")]
    if verdict != ["ok"]:
        result.problems.append("SQLite finds the store damaged: " + "; ".join(verdict[:3])
                               + "; run `qa index --rebuild`")
        return
    reader = StoreReader(db)
    with transaction(db, immediate=False):
        settings = reader.meta("settings")
        if manifest is not None and _settings(settings) != _settings(manifest):
            keys = sorted(k for k in set(_settings(settings)) | set(_settings(manifest))
                          if settings.get(k) != manifest.get(k))
            result.problems.append(f"{MANIFEST_FILE} disagrees with the settings recorded in "
                                   f"the store ({', '.join(keys)}); `qa check --repair` "
                                   "rewrites it from the store")
        dimension = int(settings["dimension"])
        result.generation = reader.generation()
        result.documents, result.chunks = reader.counts()
        for sql, what in _CONSISTENCY_QUERIES:
            count = db.execute(sql.format(bytes=dimension * 4)).fetchone()[0]
            if count:
                result.problems.append(f"{count} {what}")
        documents = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        chunks = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        if (documents, chunks) != (result.documents, result.chunks):
            result.problems.append(
                f"the recorded counts ({result.documents} documents, {result.chunks} chunks) "
                f"disagree with the store ({documents}, {chunks})")
        if db.execute("PRAGMA foreign_key_check").fetchone() is not None:
            result.problems.append("chunks or vectors point at rows that do not exist")


_CONSISTENCY_QUERIES = (
    ("SELECT COUNT(*) FROM chunks c LEFT JOIN vectors v ON v.chunk_id = c.id "
     "WHERE v.chunk_id IS NULL", "chunks have no vector (run `qa index --rebuild`)"),
    ("SELECT COUNT(*) FROM vectors v LEFT JOIN chunks c ON c.id = v.chunk_id "
     "WHERE c.id IS NULL", "vectors belong to no chunk"),
    ("SELECT COUNT(*) FROM vectors WHERE length(vector) != {bytes}",
     "vectors have the wrong size (run `qa index --rebuild`)"),
    ("SELECT COUNT(*) FROM chunks WHERE id NOT IN (SELECT rowid FROM keywords)",
     "chunks have no keyword entry"),
    ("SELECT COUNT(*) FROM keywords WHERE rowid NOT IN (SELECT id FROM chunks)",
     "keyword entries belong to no chunk"),
    ("SELECT COUNT(*) FROM documents d WHERE NOT EXISTS "
     "(SELECT 1 FROM chunks c WHERE c.doc_id = d.doc_id)", "documents have no chunks"),
)


def _settings(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k not in ("qa_version", "created_at")}


def _check_vector_cache(config: Config, result: CheckResult) -> None:
    """The FAISS cache and the tantivy keyword index, caught up from the store on open,
    must each hold exactly the store's chunks."""
    from qa.index.local_engine import LocalEngine

    engine = LocalEngine(config, config.index_dir)
    try:
        with engine.snapshot() as snapshot:
            stored = {row[0] for row in snapshot.db.execute("SELECT id FROM chunks")}
            cached = engine._state.vectors.ids().tolist()
            keyword_index = engine._state.keyword_index
            indexed = keyword_index.chunk_ids() if keyword_index is not None else None
        _compare_ids("the vector cache", cached, stored, result)
        if indexed is not None:
            _compare_ids("the keyword index (tantivy)", indexed, stored, result)
    finally:
        engine.close()


def _compare_ids(what: str, held: list[int], stored: set[int], result: CheckResult) -> None:
    """A derived index must hold each stored chunk once, and nothing else."""
    if len(held) != len(set(held)):
        result.problems.append(f"{what} holds duplicate ids (`qa check --repair` rebuilds it)")
        return
    missing, extra = len(stored - set(held)), len(set(held) - stored)
    if missing or extra:
        result.problems.append(f"{what} disagrees with the store ({missing} chunks missing, "
                               f"{extra} of no chunk; `qa check --repair` rebuilds it)")


def repair_index(config: Config) -> list[str]:
    """Fix what the store can rebuild; returns what was done. Holds the writer lock."""
    if config.engine == "milvus":
        from qa.index.milvus_check import repair_milvus

        return repair_milvus(config)
    from qa.index.local_engine import LocalEngine

    done: list[str] = []
    folder = IndexFolder(config.index_dir)
    with folder.writer_lock():
        done.extend(f"removed leftover {p}" for p in folder.remove_leftovers())
        store_dir = folder.require_store()
        db = connect(store_dir / STORE_FILE, readonly=False)
        try:
            settings = StoreReader(db).meta("settings")
            try:
                current = read_manifest(store_dir)
            except QAError:
                current = None
            if current is None or _settings(current) != _settings(settings):
                write_manifest(store_dir, settings)
                done.append(f"rewrote {MANIFEST_FILE} from the store's settings")
            done.extend(_repair_store(db, config, int(settings["dimension"])))
        finally:
            db.close()
        for cache in store_dir.glob("vectors-*.faiss"):
            cache.unlink()
        # The tantivy keyword index is derived like the vector cache: the engine opened
        # below rebuilds it from the repaired store when the config uses it.
        shutil.rmtree(store_dir / tantivy_keywords.FOLDER, ignore_errors=True)
        engine = LocalEngine(config, folder.path, store_dir=store_dir, locked=True)
        try:
            engine.save_vector_cache()
        finally:
            engine.close()
        done.append("rebuilt the vector cache from the store")
        if config.index.keyword_backend == "tantivy":
            done.append("rebuilt the keyword index (tantivy) from the store")
    return done


def _repair_store(db: sqlite3.Connection, config: Config, dimension: int) -> list[str]:
    done: list[str] = []
    with transaction(db):
        orphans = db.execute("DELETE FROM vectors WHERE chunk_id NOT IN "
                             "(SELECT id FROM chunks)").rowcount
        if orphans:
            done.append(f"deleted {orphans} vectors of no chunk")
        stale = db.execute(f"DELETE FROM vectors WHERE length(vector) != {dimension * 4}"
                           ).rowcount
        if stale:
            done.append(f"deleted {stale} vectors of the wrong size")
        if _keywords_disagree(db):
            count = _rebuild_keywords(db, config)
            done.append(f"rebuilt the keyword entries of {count} chunks")
        for key, table in (("documents", "documents"), ("chunks", "chunks")):
            actual = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            db.execute("UPDATE meta SET value = ? WHERE key = ?", (json.dumps(actual), key))
    return done


def _keywords_disagree(db: sqlite3.Connection) -> bool:
    missing = db.execute("SELECT COUNT(*) FROM chunks WHERE id NOT IN "
                         "(SELECT rowid FROM keywords)").fetchone()[0]
    extra = db.execute("SELECT COUNT(*) FROM keywords WHERE rowid NOT IN "
                       "(SELECT id FROM chunks)").fetchone()[0]
    return bool(missing or extra)


def _rebuild_keywords(db: sqlite3.Connection, config: Config) -> int:
    """Re-tokenise every chunk (with its title and section, as at indexing)."""
    tokenizer = Tokenizer(config.keywords.user_words)
    db.execute("DELETE FROM keywords")
    rows = db.execute("SELECT c.id, c.text, c.section, d.title FROM chunks c "
                      "JOIN documents d USING (doc_id)").fetchall()
    keywords.add_keywords(db, (
        (row["id"], tokenizer.tokens(keyword_text(_ChunkText(row["text"], row["section"]),
                                                  row["title"], config.chunking)))
        for row in rows))
    return len(rows)


@dataclass(frozen=True)
class _ChunkText:
    text: str
    section: str | None
