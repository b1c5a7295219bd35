"""The fault battery: every file the product reads or writes, damaged in every way, through
`qa ask`, `qa index`, `qa serve` and `qa check`. Each run either works (the damage is to
a cache, which is rebuilt) or ends in one line that says what is wrong and what to run,
with a non-zero exit; never a traceback, and never a file created by a reader."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa import cli
from qa.index.layout import IndexFolder
from tests.fakes import FakeEmbedder

ROOT = os.geteuid() == 0
QUESTION = "2021年宜宾白酒产业的营业收入是多少？"
CONFIG = "corpus_dir: corpus\nindex_dir: embeddings/index\nmodel:\n  name: fake-embedder\n" \
         "  cache_dir: cache\n"


@pytest.fixture(scope="module")
def built_project(tmp_path_factory, ) -> Path:
    """One indexed project, copied for each test (indexing once keeps the battery fast)."""
    from tests.conftest import SHIPPED_CORPUS

    base = tmp_path_factory.mktemp("built")
    shutil.copytree(SHIPPED_CORPUS, base / "corpus", ignore=shutil.ignore_patterns(".*"))
    (base / "config.yaml").write_text(CONFIG, encoding="utf-8")
    cwd = Path.cwd()
    os.chdir(base)
    try:
        original = cli.load_embedder
        cli.load_embedder = lambda config: FakeEmbedder()
        try:
            result = CliRunner().invoke(cli.main, ["index"])
        finally:
            cli.load_embedder = original
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return base


@pytest.fixture
def project(built_project, tmp_path, monkeypatch) -> Path:
    target = tmp_path / "p"
    shutil.copytree(built_project, target, symlinks=True)
    monkeypatch.setattr(cli, "load_embedder", lambda config: FakeEmbedder())
    # `qa serve` stops after building the app and binding: the faults are at start-up.
    monkeypatch.setattr("qa.web.server.serve", close_server)
    monkeypatch.chdir(target)
    return target


def close_server(server, announce=None, close=None) -> None:
    # Stands in for qa.web.server.serve, which ends the process (it would end pytest).
    server.stop()
    server.wsgi_app.shutdown()
    if close is not None:
        close()


def store(project: Path) -> Path:
    return IndexFolder(project / "embeddings" / "index").require_store()


def target_of(project: Path, name: str) -> Path:
    index = project / "embeddings" / "index"
    if name in ("CURRENT", "writer.lock"):
        return index / name
    if name == "vectors.faiss":
        return next(store(project).glob("vectors-*.faiss"))
    if name == "embedding-cache.sqlite":
        return project / "cache" / name
    if name in ("config.yaml", "corpus"):
        return project / name
    return store(project) / name


def damage(path: Path, how: str) -> None:
    if how == "delete":
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    elif how == "unreadable":
        path.chmod(0)
    elif path.is_dir():  # the corpus: replace the folder by a file
        shutil.rmtree(path)
        path.write_bytes(b"not a folder")
    elif how == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: max(1, len(data) // 2)])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "zero":
        path.write_bytes(b"\0" * max(4096, path.stat().st_size))
    elif how == "garbage":
        path.write_bytes(os.urandom(max(4096, path.stat().st_size)) if path.suffix in
                         (".sqlite", ".faiss") else b"\x89garbage: [\n\xff")
    elif how == "list":
        path.write_text("[]", encoding="utf-8")


# Every message ends in what to do about it.
ACTIONS = ("run `qa ", "fix ", "fix it", "check its", "check that", "create it", "pass --")


def run(*args: str):
    return CliRunner().invoke(cli.main, list(args))


def assert_one_clear_line(result, what: str) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{what}: traceback\n{result.output}")
    assert result.exit_code != 0, f"{what}: exit 0 on a damaged file\n{result.output}"
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, f"{what}: {result.stderr!r}"
    assert "Traceback" not in result.output
    # `qa check` lists the problems it found, each with what to run, then sums them up.
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem:")]
    for line in problems or errors:
        assert any(action in line for action in ACTIONS), (
            f"{what}: the line does not say what to do: {line}")


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*")} if path.is_dir() else set()


FILES = ["CURRENT", "manifest.json", "chunks.sqlite", "vectors.faiss", "writer.lock",
         "embedding-cache.sqlite", "config.yaml", "corpus"]
WAYS = ["truncate", "empty", "zero", "garbage", "delete", "unreadable", "list"]
COMMANDS = {
    "ask": ("ask", QUESTION),
    "index": ("index",),
    "serve": ("serve", "--port", "0"),
    "check": ("check",),
}
# Damage to a cache is repaired, not reported: these runs must succeed.
TOLERATED = {
    ("vectors.faiss", way) for way in WAYS
} | {
    ("writer.lock", way) for way in WAYS
} | {
    ("embedding-cache.sqlite", way) for way in WAYS
}
# Files a command never touches: any outcome that is not a traceback is fine.
UNTOUCHED = {
    ("ask", "corpus"), ("serve", "corpus"), ("check", "corpus"),
    ("ask", "embedding-cache.sqlite"), ("serve", "embedding-cache.sqlite"),
    ("check", "embedding-cache.sqlite"),
}


@pytest.mark.parametrize("how", WAYS)
@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_damage_ends_in_one_clear_line_or_is_repaired(project, command, name, how):
    if how == "list" and name not in ("manifest.json", "config.yaml", "CURRENT"):
        pytest.skip("a JSON list only means something in JSON/YAML files")
    if how == "unreadable" and ROOT:
        pytest.skip("running as root: permissions do not stop root from reading")
    path = target_of(project, name)
    if name == "embedding-cache.sqlite" and not path.exists():
        pytest.skip("no vector cache was written")
    damage(path, how)
    index = project / "embeddings" / "index"
    before = files_under(index)
    result = run(*COMMANDS[command])
    what = f"qa {command} with {name} {how}"
    try:
        if (command, name) in UNTOUCHED:
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                f"{what}: traceback\n{result.output}")
        elif (name, how) in TOLERATED:
            if command == "check" and name == "vectors.faiss":
                # `qa check` names a damaged cache (and --repair rebuilds it).
                assert result.exception is None or isinstance(result.exception, SystemExit)
            else:
                assert result.exit_code == 0, f"{what}\n{result.output}"
        elif result.exit_code != 0:
            assert_one_clear_line(result, what)
        if command in ("ask", "serve", "check") and name != "writer.lock":
            created = files_under(index) - before
            assert not created, f"{what} created {sorted(map(str, created))}"
    finally:
        if how == "unreadable" and path.exists():
            path.chmod(0o700)


def test_a_corrupt_vector_cache_is_set_aside_and_rebuilt(project):
    cache = target_of(project, "embedding-cache.sqlite")
    damage(cache, "garbage")
    result = run("index", "--rebuild")
    assert result.exit_code == 0, result.output
    aside = list(cache.parent.glob("embedding-cache.sqlite.corrupt-*"))
    assert len(aside) == 1 and cache.is_file()


@pytest.mark.parametrize("how", ["truncate", "zero", "garbage", "delete"])
@pytest.mark.parametrize("name", ["CURRENT", "manifest.json", "chunks.sqlite"])
def test_what_the_message_says_to_run_brings_the_index_back(project, name, how):
    damage(target_of(project, name), how)
    failed = run("ask", QUESTION)
    if failed.exit_code == 0:
        return  # nothing to repair
    # Follow the advice as an operator would: run what the message names, in order; a
    # `qa check` names what to run next.
    todo = named_commands(failed.stderr)
    assert todo, failed.stderr
    done: list[str] = []
    while todo and len(done) < 4:
        command = todo.pop(0)
        if command in done:
            continue
        done.append(command)
        result = run(*command.split()[1:])
        if result.exit_code != 0:
            todo = named_commands(result.stderr) + todo
    answered = run("ask", QUESTION)
    assert answered.exit_code == 0, f"after {done}: {answered.output}"


def named_commands(text: str) -> list[str]:
    """The `qa …` commands a message names, diagnosis (`qa check`) last."""
    found = list(dict.fromkeys(re.findall(r"`(qa [a-z -]+)`", text)))
    return sorted(found, key=lambda c: c == "qa check")
