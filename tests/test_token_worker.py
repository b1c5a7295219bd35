"""Tokenising in a worker process while the model embeds: the same index as the serial
path, in the same order, and a worker that dies ends the run with one clear error
without losing what was committed."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3

import pytest

from qa.errors import QAError
from qa.index import indexer as indexer_module
from qa.index.engines import fresh_engine, writable_engine
from qa.index.indexer import Indexer
from qa.index.layout import IndexFolder
from qa.index.store import STORE_FILE
from qa.index.token_worker import TokenWorker
from qa.tokenizer import Tokenizer
from tests.fakes import FakeEmbedder


def _build(config, corpus, embedder, token_workers):
    with fresh_engine(config, embedder.dimension) as engine:
        indexer = Indexer(config, engine, lambda: embedder, token_workers=token_workers)
        return indexer.sync(corpus)


def _rows(index_dir):
    """(doc_id, ordinal, chunk text, keyword terms, vector bytes) of every chunk, by id."""
    store = IndexFolder(index_dir).require_store() / STORE_FILE
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return db.execute(
            "SELECT c.doc_id, c.ordinal, c.text, k.terms, v.vector FROM chunks c "
            "JOIN keywords k ON k.rowid = c.id JOIN vectors v ON v.chunk_id = c.id "
            "ORDER BY c.id").fetchall()
    finally:
        db.close()


def test_the_worker_gives_the_tokens_of_the_serial_tokenizer():
    words = ("产融协同", "五粮液")
    texts = ["五粮液集团推进产融协同发展，营收增长18.8%。", "臺灣的JD.com在2024年成立。", ""]
    worker = TokenWorker(Tokenizer(words).user_words)
    try:
        assert worker.result(worker.submit(texts)) == [Tokenizer(words).tokens(t)
                                                        for t in texts]
    finally:
        worker.close()


def test_a_pipelined_build_stores_what_the_serial_build_stores(
        make_config, shipped_corpus, tmp_path, monkeypatch):
    # Small batches, so the run goes through the worker many times (and ends with a
    # short batch tokenised in place).
    monkeypatch.setattr(indexer_module, "BATCH_PASSAGES", 16)
    reports = {}
    for workers in (0, 1):
        config = make_config(corpus_dir=str(shipped_corpus),
                             index_dir=str(tmp_path / f"index-{workers}"))
        reports[workers] = _build(config, shipped_corpus, FakeEmbedder(), workers)
    serial, pipelined = _rows(tmp_path / "index-0"), _rows(tmp_path / "index-1")
    assert len(serial) > 3 * 16
    assert pipelined == serial  # same chunks in the same order, same tokens and vectors
    assert sorted(reports[1].added) == sorted(reports[0].added)
    assert reports[1].passages == reports[0].passages == len(serial)


def test_title_out_of_the_embedded_text_leaves_the_keyword_tokens_alone(
        make_config, shipped_corpus, tmp_path, monkeypatch):
    """embed_title off, keyword_title on: the same keyword terms as with the title in
    both, on the worker path and the serial one; only the vectors change."""
    monkeypatch.setattr(indexer_module, "BATCH_PASSAGES", 16)
    builds = {}
    for name, embed_title, workers in (("both", True, 1), ("serial", False, 0),
                                       ("worker", False, 1)):
        config = make_config(corpus_dir=str(shipped_corpus),
                             index_dir=str(tmp_path / f"index-{name}"),
                             chunking={"embed_title": embed_title, "keyword_title": True})
        _build(config, shipped_corpus, FakeEmbedder(), workers)
        builds[name] = _rows(tmp_path / f"index-{name}")
    terms = {name: [row[:4] for row in rows] for name, rows in builds.items()}
    assert terms["serial"] == terms["worker"] == terms["both"]
    vectors = {name: [row[4] for row in rows] for name, rows in builds.items()}
    assert vectors["serial"] == vectors["worker"]
    assert all(a != b for a, b in zip(vectors["worker"], vectors["both"], strict=True))


class _KillsTheWorker(FakeEmbedder):
    """Kills the tokeniser worker while embedding the `at`-th batch."""

    def __init__(self, at: int):
        super().__init__()
        self.calls = 0
        self.at = at

    def embed_passages(self, texts, progress=None):
        self.calls += 1
        if self.calls == self.at:
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)
                child.join(timeout=10)
        return super().embed_passages(texts, progress)


def test_a_dead_worker_is_one_clear_error_and_a_second_run_finishes(
        make_config, shipped_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(indexer_module, "BATCH_PASSAGES", 16)
    config = make_config(corpus_dir=str(shipped_corpus), index_dir=str(tmp_path / "index"))
    # `qa index` builds in place, batch by batch: what is committed stays committed.
    with writable_engine(config, FakeEmbedder) as engine:
        indexer = Indexer(config, engine, lambda: _KillsTheWorker(at=3))
        with pytest.raises(QAError, match="tokeniser worker failed .*stopped unexpectedly"):
            indexer.sync(shipped_corpus)
        committed = _rows(tmp_path / "index")
        # The two batches before the failure are kept; nothing of the third is.
        assert 2 * 16 <= len(committed) < 3 * 16 + 16
        embedder = FakeEmbedder()
        report = Indexer(config, engine, lambda: embedder).sync(shipped_corpus)
    assert multiprocessing.active_children() == []
    rows = _rows(tmp_path / "index")
    keys = [(doc_id, ordinal) for doc_id, ordinal, *_ in rows]
    assert len(keys) == len(set(keys))  # no duplicates
    # Only what was not committed was embedded again.
    assert embedder.passages_embedded == len(rows) - len(committed)
    assert report.unchanged > 0


_PARENT = """
import multiprocessing, sys, time
from qa.index.token_worker import TokenWorker
if __name__ == "__main__":
    worker = TokenWorker(())
    worker.result(worker.submit(["测试"]))
    print([c.pid for c in multiprocessing.active_children()][0], flush=True)
    time.sleep(120)
"""


def test_a_worker_ends_itself_when_its_parent_is_killed(tmp_path):
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = tmp_path / "parent.py"
    script.write_text(_PARENT, encoding="utf-8")
    repo = str(Path(__file__).resolve().parent.parent)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": repo})
    try:
        worker = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)

        def running() -> bool:  # a zombie waiting to be reaped has ended
            stat = Path(f"/proc/{worker}/stat")
            try:
                return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
            except (FileNotFoundError, ProcessLookupError):
                return False

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and running():
            time.sleep(0.2)
        assert not running()
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


@pytest.mark.parametrize("parent_alive", [True, False])
def test_a_worker_ends_itself_once_the_process_that_started_it_is_gone(parent_alive):
    """The parent's pid is handed to the worker by the parent: a parent killed while the
    worker was still starting (the worker then already belongs to another process) must
    not leave it waiting for work forever, holding the parent's pipes."""
    import subprocess
    import sys
    import time

    parent = os.getpid() if parent_alive else 1
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom qa.index import token_worker\n"
         f"token_worker._start((), {parent})\ntime.sleep(60)"],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        if parent_alive:
            time.sleep(3)
            assert child.poll() is None
        else:
            assert child.wait(timeout=30) == 0
    finally:
        child.kill()
        child.wait()
