"""Kill writers with SIGKILL at random moments and check the index after each kill.

Used by tests/test_crash.py (a few kills per phase) and scripts/crash_test.py (many).
Writers are the real `qa` commands and `qa serve`'s write API, run in child processes
with the fake embedder (slowed a little, so that kills land in every phase: loading,
embedding, committing, swapping). Each child prints `ack` lines after every commit
that returned, so the checker knows what was acknowledged.

After every kill: the index opens, `check_index` finds no problem, every acknowledged
change is there (an acknowledged document with that content, an acknowledged removal
absent), and then the same command run to completion leaves the exact expected index
and no leftovers.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The `qa` command with the fake embedder (slowed: 20 ms a batch) and an acknowledging
# engine: after each commit returns, print what it stored and removed.
CHILD = """
import sys, time
import qa.cli
import qa.index.indexer
import qa.index.local_engine as local_engine
from tests.fakes import FakeEmbedder

class Slow(FakeEmbedder):
    def embed_passages(self, texts, progress=None):
        time.sleep(0.02)
        return super().embed_passages(texts, progress)

qa.index.indexer.BATCH_PASSAGES = 8
qa.cli.load_embedder = lambda config: Slow()
commit = local_engine.LocalEngine.commit

def acknowledging(self, changes):
    result = commit(self, changes)
    for doc_id in result.chunk_ids:
        print("ack put", doc_id, flush=True)
    for doc_id, found in result.removed.items():
        print("ack remove", doc_id, flush=True)
    return result

local_engine.LocalEngine.commit = acknowledging
print("ready", flush=True)
qa.cli.main(sys.argv[1:])
"""


def article(i: int, version: int) -> str:
    return (f"实时测试文章{i}第{version}版\n\n"
            f"这是第{i}篇测试文章的第一段，版本{version}，讲城市数字经济和产业园区的发展。\n\n"
            f"第二段写第{i}篇文章的细节：园区今年引进企业{i + version}家，版本{version}。\n\n"
            f"第三段是结尾，提到第{i}篇文章的记者和版本{version}。")


@dataclass
class Project:
    """A folder with config.yaml, a corpus and an outside folder for `qa add`."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def corpus(self) -> Path:
        return self.root / "corpus"

    @property
    def outside(self) -> Path:
        return self.root / "outside"

    @classmethod
    def create(cls, root: Path, documents: int = 30) -> Project:
        project = cls(root)
        project.corpus.mkdir(parents=True)
        project.outside.mkdir()
        (project.corpus / "2024").mkdir()
        for i in range(documents):
            folder = project.corpus / ("2024" if i % 3 == 0 else "")
            (folder / f"doc{i:03d}.txt").write_text(article(i, 1), encoding="utf-8")
        for i in range(12):
            (project.outside / f"extra{i:03d}.txt").write_text(article(100 + i, 1),
                                                              encoding="utf-8")
        project.config.write_text(
            "corpus_dir: corpus\nindex_dir: embeddings/index\nmodel:\n"
            f"  name: fake-embedder\n  cache_dir: {root / 'cache'}\n", encoding="utf-8")
        return project

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-c", CHILD, *args, "--config", str(self.config)]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), cwd=REPO, capture_output=True, text=True,
                              timeout=120)


@dataclass
class Kill:
    phase: str
    after: float
    acknowledged: int
    problems: list[str] = field(default_factory=list)


class Child:
    """`qa ARGS` in a child process, its stdout lines collected as they come."""

    def __init__(self, project: Project, args: tuple[str, ...], env: dict[str, str] | None = None):
        self.process = subprocess.Popen(
            project.command(*args), cwd=REPO, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True,
            env=os.environ | {"PYTHONUNBUFFERED": "1"} | (env or {}))
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix):
                    return line
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.005)
        raise RuntimeError(f"the child never printed {prefix!r}: {self.lines[-5:]}")

    def kill(self, after: float) -> bool:
        """SIGKILL after `after` seconds (unless it ends first); True if it ended first."""
        try:
            self.process.wait(timeout=after)
            finished = True
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            finished = False
        self._reader.join(10)
        if self.process.stdout:
            self.process.stdout.close()
        return finished

    @property
    def acks(self) -> list[str]:
        return [line for line in self.lines if line.startswith("ack ")]


def run_and_kill(project: Project, args: tuple[str, ...], after: float
                 ) -> tuple[list[str], bool]:
    """Start `qa ARGS`, SIGKILL it `after` seconds after it has started up (imports
    done); returns (ack lines, whether it finished before the kill)."""
    child = Child(project, args)
    child.wait_for("ready")
    finished = child.kill(after)
    return child.acks, finished


def index_state(project: Project) -> dict[str, str]:
    """doc_id -> content hash of the live index, read through the product's own engine."""
    from qa.config import load_config
    from qa.index.local_engine import LocalEngine

    engine = LocalEngine(load_config(project.config))
    try:
        with engine.snapshot() as snapshot:
            return {d.doc_id: snapshot.document_hash(d.doc_id) for d in snapshot.documents()}
    finally:
        engine.close()


def verify(project: Project, acks: list[str], expected_versions: dict[str, set[str]],
           removed_for_good: set[str]) -> list[str]:
    """What is wrong with the index after a kill (empty when all is well)."""
    from qa.config import load_config
    from qa.index.check import check_index

    config = load_config(project.config)
    problems = list(check_index(config).problems)
    if problems:
        return problems
    state = index_state(project)
    # A removal sent but not acknowledged when the writer died may or may not have
    # happened, so an acknowledged document it targets may be gone.
    in_doubt = {line.split()[2] for line in acks if line.startswith("sent remove")} - {
        line.split()[2] for line in acks if line.startswith("ack remove")}
    for line in acks:
        word, kind, doc_id = line.split()
        if word != "ack":
            continue
        if kind == "put" and doc_id not in state and doc_id not in removed_for_good | in_doubt:
            problems.append(f"acknowledged {doc_id} is missing")
        if kind == "remove" and doc_id in state and doc_id in removed_for_good:
            problems.append(f"acknowledged removal of {doc_id} is undone")
    for doc_id, digest in state.items():
        allowed = expected_versions.get(doc_id)
        if allowed is not None and digest not in allowed:
            problems.append(f"{doc_id} holds a version no writer wrote")
    return problems


def hashes_of(project: Project, paths: list[Path]) -> dict[str, set[str]]:
    """doc_id -> content hash of each file as the loader reads it now."""
    from qa.config import load_config
    from qa.index.store import content_hash
    from qa.ingest.loader import load_file

    config = load_config(project.config)
    found: dict[str, set[str]] = {}
    for path in paths:
        root = config.corpus_dir if path.is_relative_to(config.corpus_dir) else path.parent
        for document in load_file(path.resolve(), root.resolve(), config.ingest):
            found.setdefault(document.doc_id, set()).add(content_hash(document))
    return found


Phase = Callable[[Project], tuple[tuple[str, ...], set[str]]]
"""Prepares the project for one run; returns (qa arguments, doc ids removed for good)."""


def phase_build(project: Project) -> tuple[tuple[str, ...], set[str]]:
    return ("index",), set()


def phase_sync(project: Project) -> tuple[tuple[str, ...], set[str]]:
    files = sorted(project.corpus.rglob("doc*.txt"))
    gone = set()
    for n, path in enumerate(files[:18]):
        if n % 3 == 0:
            path.unlink()
            gone.add(path.stem)
        elif n % 3 == 1:
            i = int(path.stem[3:])
            path.write_text(article(i, 2), encoding="utf-8")
        else:
            (path.parent / f"new{n:03d}.txt").write_text(article(200 + n, 1), encoding="utf-8")
    return ("index",), gone


def phase_rebuild(project: Project) -> tuple[tuple[str, ...], set[str]]:
    return ("index", "--rebuild"), set()


def phase_add(project: Project) -> tuple[tuple[str, ...], set[str]]:
    return ("add", str(project.outside)), set()


def phase_remove(project: Project) -> tuple[tuple[str, ...], set[str]]:
    victims = sorted(index_state(project))[:10]
    return ("remove", *victims), set(victims)


PHASES: dict[str, Phase] = {
    "qa index (first build)": phase_build,
    "qa index (sync of changes)": phase_sync,
    "qa index --rebuild": phase_rebuild,
    "qa add (a folder)": phase_add,
    "qa remove": phase_remove,
}


def prepared(root: Path, phase: str) -> Project:
    """The starting point of a phase: a fresh project, indexed unless the phase builds."""
    shutil.rmtree(root, ignore_errors=True)
    project = Project.create(root)
    if phase != "qa index (first build)":
        done = project.run("index")
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        if phase == "qa remove":
            project.run("add", str(project.outside))
    return project


def kill_cycle(workdir: Path, phase: str, kills: int, rng: random.Random,
               report: Callable[[Kill], None] | None = None) -> list[Kill]:
    """Run `phase` `kills` times from its starting point, killed at a random moment; each
    time verify, then finish the run and verify the final index."""
    from qa.config import load_config
    from qa.index.check import check_index

    if phase not in _durations:
        project = prepared(workdir / "probe", phase)
        args, _ = PHASES[phase](project)
        child = Child(project, args)
        child.wait_for("ready")
        started = time.monotonic()
        child.kill(120)
        _durations[phase] = time.monotonic() - started
        shutil.rmtree(project.root, ignore_errors=True)
    results: list[Kill] = []
    for _ in range(kills):
        project = prepared(workdir / "kill", phase)
        args, gone = PHASES[phase](project)
        files = sorted(project.corpus.rglob("*.txt")) + sorted(project.outside.glob("*.txt"))
        versions = hashes_of(project, files)
        if (project.root / "embeddings/index/CURRENT").exists():
            for doc_id, digest in index_state(project).items():
                versions.setdefault(doc_id, set()).add(digest)
        after = rng.uniform(0.0, 0.85 * _durations[phase])
        acks, finished = run_and_kill(project, args, after)
        kill = Kill(phase, after, len(acks))
        if (project.root / "embeddings/index/CURRENT").exists():
            kill.problems = verify(project, acks, versions, gone)
        completed = project.run(*args)
        if completed.returncode not in (0, 1):
            kill.problems.append(f"the next run failed: {completed.stderr[-300:]}")
        final = check_index(load_config(project.config))
        kill.problems += final.problems
        kill.problems += [f"after the next run: {note}" for note in final.notes]
        if finished:
            kill.problems.append("(the run finished before the kill; not counted)")
        results.append(kill)
        if report:
            report(kill)
    return results


_durations: dict[str, float] = {}


API_KEY = "crash-test-key"


def api_kill_cycle(workdir: Path, kills: int, rng: random.Random,
                   report: Callable[[Kill], None] | None = None) -> list[Kill]:
    """`qa serve` taking writes (POST, PUT, DELETE) from a client, killed mid-stream; what
    the client got a 2xx for must be in the index after the kill."""
    from urllib.parse import urlsplit

    from qa.config import load_config
    from qa.index.check import check_index

    phase = "write API under qa serve"
    results: list[Kill] = []
    for _ in range(kills):
        project = prepared(workdir / "kill", "qa index (sync of changes)")
        server = Child(project, ("serve", "--port", "0"), env={"QA_API_KEYS": API_KEY})
        url = urlsplit(server.wait_for("serving on ").split()[2])
        acks: list[str] = []
        stop = threading.Event()
        writer = threading.Thread(target=_write_through_api, args=(url, acks, stop))
        writer.start()
        after = rng.uniform(0.0, 1.5)
        finished = server.kill(after)
        stop.set()
        writer.join(30)
        removed = {line.split()[2] for line in acks if line.startswith("ack remove")}
        kill = Kill(phase, after, sum(1 for line in acks if line.startswith("ack ")))
        kill.problems = verify(project, acks, {}, removed)
        final = check_index(load_config(project.config))
        kill.problems += final.problems
        if finished:
            kill.problems.append("(the run finished before the kill; not counted)")
        results.append(kill)
        if report:
            report(kill)
    return results


def _write_through_api(url, acks: list[str], stop: threading.Event) -> None:
    """POST 45 documents and DELETE 15 of them, one request at a time; record each 2xx."""
    import http.client

    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    for i in range(60):
        if stop.is_set():
            return
        if i % 4 == 3:
            doc_id, method, body = f"api-{i - 2}", "DELETE", None
            path = f"/api/documents/{doc_id}"
        else:
            doc_id, method, path = f"api-{i}", "POST", "/api/documents"
            body = json.dumps({"doc_id": doc_id, "title": f"接口文章{i}",
                               "text": article(300 + i, 1)})
        if method == "DELETE":
            acks.append(f"sent remove {doc_id}")
        try:
            connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
            connection.request(method, path, body, headers)
            status = connection.getresponse().status
            connection.close()
        except OSError:
            return
        if 200 <= status < 300:
            acks.append(f"ack {'remove' if method == 'DELETE' else 'put'} {doc_id}")


def summary(kills: list[Kill]) -> dict[str, object]:
    counted = [k for k in kills if not any("not counted" in p for p in k.problems)]
    failed = [k for k in counted if k.problems]
    return {
        "kills": len(counted),
        "failed": len(failed),
        "per_phase": {p: sum(1 for k in counted if k.phase == p)
                      for p in [*PHASES, "write API under qa serve"]},
        "problems": [(k.phase, round(k.after, 2), k.problems) for k in failed],
    }
