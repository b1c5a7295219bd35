"""The `qa` command: parses arguments, shows progress, prints. The work is in the library."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click

from qa.answer import Answer
from qa.config import MODES, Config, config_from_mapping, load_config, resolve_paths
from qa.embedder import Embedder, backend_label, create_embedder
from qa.errors import QAError

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("config.yaml")


def load_embedder(config: Config) -> Embedder:
    """The configured embedding model (tests replace this with a fake)."""

    def status(message: str) -> None:
        click.echo(f"model: {message}", err=True)

    return create_embedder(config.model, status=status)


def cached(embedder: Embedder, config: Config) -> Embedder:
    """The embedder behind a cache of passage vectors, so rebuilds embed only what changed."""
    from qa.embedding_cache import CachedEmbedder

    # int8 and fp32 vectors differ slightly: never serve one as the other.
    salt = f"{config.model.query_prompt}|{config.model.passage_prompt}"
    if config.model.backend != "torch":  # torch keeps its old keys: its vectors are reused
        salt += f"|{backend_label(config.model)}"
    return CachedEmbedder(embedder, config.model.cache_dir / "embedding-cache.sqlite", salt)


def config_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--config PATH` on every command."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Settings file (default: ./config.yaml).",
    )(command)


def read_config(config_path: Path | None) -> Config:
    """The config named on the command line, or ./config.yaml, or the defaults."""
    try:
        if config_path is None and not DEFAULT_CONFIG.exists():
            logger.info("no ./config.yaml; using the default settings")
            return load_config_defaults()
        return load_config(config_path or DEFAULT_CONFIG)
    except QAError as exc:
        raise click.ClickException(str(exc)) from None


def load_config_defaults() -> Config:
    """Default settings with paths relative to the current folder."""
    return resolve_paths(config_from_mapping({}), Path.cwd())


class _Group(click.Group):
    """Every command's last line of defence: a file the product reads or writes that fails
    in a way the library did not foresee still ends in one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        import sqlite3

        try:
            return super().invoke(ctx)
        except (QAError, sqlite3.DatabaseError, OSError) as exc:
            raise click.ClickException(one_line(exc)) from None


def one_line(exc: Exception) -> str:
    """What a command says when the library refuses (QAError) or a file fails under it."""
    import sqlite3

    if isinstance(exc, sqlite3.DatabaseError):
        logger.debug("database error", exc_info=True)
        return f"an index file is unreadable ({exc}); run `qa check` to see what is wrong"
    if isinstance(exc, OSError):
        logger.debug("file error", exc_info=True)
        where = f" {exc.filename}" if exc.filename else ""
        return (f"cannot use{where}: {exc.strerror or exc}; check that it exists and its "
                "permissions (run with -v for details)")
    return str(exc)


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="Log what happens to stderr.")
@click.version_option(package_name="newsqa")
def main(verbose: bool) -> None:
    """Ask questions of a folder of Chinese news articles and get cited passages."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@main.command("index")
@click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--index", "index_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--rebuild", is_flag=True,
              help="Build a new index from scratch (the old one serves until it is done).")
@config_option
def index_command(corpus_dir: Path | None, index_dir: Path | None, rebuild: bool,
                  config_path: Path | None):
    """Sync the index with the corpus folder: add new files, replace changed ones,
    remove deleted ones; unchanged files cost nothing."""
    from qa.index.saved_index import sync_index

    config = read_config(config_path)
    corpus_dir = (corpus_dir or config.corpus_dir).resolve()
    index_dir = (index_dir or config.index_dir).resolve()
    factory = _embedder_factory(config)
    with _progress_bar() as progress:
        try:
            report = sync_index(config, factory, corpus_dir, index_dir, rebuild=rebuild,
                                progress=progress)
        except QAError as exc:
            raise click.ClickException(str(exc)) from None
    _print_report("rebuilt" if rebuild else "synced", report, index_dir, factory)


@main.command("add")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(path_type=Path, exists=True))
@config_option
def add_command(paths: tuple[Path, ...], config_path: Path | None) -> None:
    """Add or replace the documents of files or folders (PATH...)."""
    from qa.index.indexer import Indexer

    config = read_config(config_path)
    factory = _embedder_factory(config)
    with _progress_bar() as progress:
        try:
            with _writable_engine(config, factory) as engine:
                report = Indexer(config, engine, factory, progress).add_paths(paths)
        except QAError as exc:
            raise click.ClickException(str(exc)) from None
    _print_report("added", report, config.index_dir, factory)
    if report.skipped and not (report.added or report.replaced or report.unchanged):
        raise SystemExit(1)


@main.command("remove")
@click.argument("doc_ids", nargs=-1, required=True)
@config_option
def remove_command(doc_ids: tuple[str, ...], config_path: Path | None) -> None:
    """Remove documents (DOC_ID...) from the index."""
    from qa.index.indexer import Indexer

    config = read_config(config_path)
    try:
        with _writable_engine(config, None) as engine:
            with engine.snapshot() as snapshot:
                origins = {d: info[1] for d in doc_ids if (info := snapshot.document_info(d))}
            found = Indexer(config, engine, _embedder_factory(config)).remove(doc_ids)
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    corpus = str(config.corpus_dir.resolve()) + "/"
    for doc_id, was_there in found.items():
        if not was_there:
            click.echo(f"no document {doc_id!r} in the index", err=True)
            continue
        click.echo(f"removed {doc_id}")
        origin = origins.get(doc_id, "")
        if origin.startswith(corpus) and Path(origin).exists():
            click.echo(f"  note: its file {origin} is still in the corpus folder, so the next "
                       "`qa index` adds it again; delete the file to keep it out", err=True)
    if not all(found.values()):
        raise SystemExit(1)


@main.command("check")
@click.option("--repair", is_flag=True,
              help="Rebuild what can be rebuilt from the store, without re-embedding.")
@click.option("--index", "index_dir", type=click.Path(path_type=Path, file_okay=False))
@config_option
def check_command(repair: bool, index_dir: Path | None, config_path: Path | None) -> None:
    """Verify the index; exit non-zero naming each problem found."""
    from qa.index.check import check_index, repair_index

    config = read_config(config_path)
    if index_dir:
        config = config.replace(index_dir=index_dir.resolve())
    try:
        if repair:
            for line in repair_index(config):
                click.echo(f"repaired: {line}")
        result = check_index(config)
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in result.problems:
        click.echo(f"problem: {problem}", err=True)
    if result.problems:
        hint = "" if repair else "; `qa check --repair` fixes what the store can rebuild"
        raise click.ClickException(f"{len(result.problems)} problem(s) in the index at "
                                   f"{config.index_dir}{hint}")
    click.echo(f"ok: {result.documents} documents, {result.chunks} chunks, "
               f"generation {result.generation} ({config.index_dir})")


@main.command("migrate")
@click.option("--to", "target", type=click.Choice(["milvus", "local"]), required=True,
              help="The engine to copy the index into (from the other one).")
@config_option
def migrate_command(target: str, config_path: Path | None) -> None:
    """Copy the index into another engine with its vectors (nothing is re-embedded),
    replacing what that engine holds; then set `engine:` in the config to use it."""
    from qa.index.engines import migrate

    config = read_config(config_path)
    try:
        report = migrate(config, target)
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"copied {report.documents} documents, {report.chunks} chunks and "
               f"{report.files} file records into the {target} engine")
    if config.engine != target:
        click.echo(f"  set `engine: {target}` in the config to serve from it", err=True)


class _EmbedderFactory:
    """Loads the model on first use only: a sync with nothing new to embed skips it."""

    def __init__(self, config: Config):
        self.config = config
        self.embedder: Embedder | None = None

    def __call__(self) -> Embedder:
        if self.embedder is None:
            self.embedder = cached(load_embedder(self.config), self.config)
        return self.embedder


def _embedder_factory(config: Config) -> _EmbedderFactory:
    return _EmbedderFactory(config)


def _writable_engine(config: Config, factory: Callable[[], Embedder] | None):
    """The live index, created empty first if there is none (when a model is at hand)."""
    from qa.index.engines import writable_engine

    return writable_engine(config, factory)


@contextmanager
def _progress_bar():
    """A progress callback drawing bytes read, documents and passages, with an ETA."""
    from tqdm import tqdm

    bar: tqdm | None = None

    def progress(state) -> None:
        nonlocal bar
        if bar is None and state.bytes_total:
            bar = tqdm(total=state.bytes_total, desc="indexing", unit="B", unit_scale=True,
                       file=sys.stderr)
        if bar is not None:
            bar.total = max(bar.total, state.bytes_total)
            bar.update(state.bytes_done - bar.n)
            bar.set_postfix(documents=state.documents, passages=state.passages,
                            refresh=False)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()


def _print_report(verb: str, report, index_dir: Path, factory: _EmbedderFactory) -> None:
    for skipped in report.skipped:
        click.echo(f"skipped {skipped.path}: {skipped.reason}", err=True)
    if report.loaded:
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(report.loaded.items()))
        click.echo(f"read: {kinds} (documents by file type)")
    embedded = getattr(factory.embedder, "embedded", report.passages)
    reused = report.passages - embedded
    if not report.passages:
        work = "nothing new to embed"
    else:
        work = f"{report.passages} passages"
        if reused:
            work += f" ({reused} vectors from the cache)"
        if embedded and report.embed_seconds > 0:
            work += f", {embedded / report.embed_seconds:.1f} passages/s embedded"
    click.echo(f"{verb}: {report.summary()}; {work}; {report.seconds:.1f} s -> {index_dir}")


@main.command("ask")
@click.argument("question", required=False)
@click.option("-k", "--top-k", type=int, default=None, help="How many passages (default 5).")
@click.option(
    "--mode", type=click.Choice(MODES), default=None,
    help="How to search (default from config: hybrid).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option("--source", "sources", multiple=True, help="Only from this source (repeatable).")
@click.option("--doc", "doc_ids", multiple=True, help="Only from this document (repeatable).")
@click.option("--category", "categories", multiple=True, help="Only this category (repeatable).")
@click.option("--since", default=None, help="Only documents dated on or after YYYY-MM-DD.")
@click.option("--until", default=None, help="Only documents dated on or before YYYY-MM-DD.")
@click.option("--sort", type=click.Choice(["relevance", "date"]), default="relevance",
              help="Order of the passages: relevance, or the best ones newest first.")
@click.option(
    "--file",
    "question_file",
    type=click.File("r", encoding="utf-8-sig"),
    help="Answer every line of FILE ('-' for stdin), one answer per line, in order.",
)
@config_option
def ask_command(
    question: str | None,
    top_k: int | None,
    mode: str | None,
    as_json: bool,
    sources: tuple[str, ...],
    doc_ids: tuple[str, ...],
    categories: tuple[str, ...],
    since: str | None,
    until: str | None,
    sort: str,
    question_file: TextIO | None,
    config_path: Path | None,
) -> None:
    """Answer QUESTION with the best passages of the index and their citations."""
    from qa.filters import parse_filters

    if (question is None) == (question_file is None):
        raise click.UsageError("give either a QUESTION or --file FILE")
    config = read_config(config_path)
    try:
        filters = parse_filters({"source": list(sources) or None,
                                 "doc_id": list(doc_ids) or None,
                                 "category": list(categories) or None,
                                 "date_from": since, "date_to": until})
    except QAError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        retriever = _open_retriever(config)
        if question is not None:
            answer = retriever.ask(question, top_k, mode, filters, sort)
            click.echo(_format_json(answer) if as_json else format_answer(answer))
            return
        for line in _questions(question_file):
            try:
                answer = retriever.ask(line, top_k, mode, filters, sort)
            except QAError as exc:
                # One bad line must not lose the answers to the others.
                if not as_json:
                    raise
                click.echo(json.dumps(
                    {"question": line, "error": {"code": "invalid_question", "message": str(exc)}},
                    ensure_ascii=False,
                ))
                continue
            click.echo(_format_json(answer) if as_json else format_answer(answer) + "\n")
    except QAError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("eval")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--mode", type=click.Choice(["all", *MODES]), default="all",
    help="Which search modes to measure (default: all).",
)
@click.option("--json", "json_out", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the results to this JSON file.")
@config_option
def eval_command(files: tuple[Path, ...], mode: str, json_out: Path | None,
                 config_path: Path | None) -> None:
    """Measure retrieval on SQuAD-format FILES, indexed together as one pool."""
    from tqdm import tqdm

    from qa.config import with_model_cache_from_environment
    from qa.evaluation import evaluate

    config = with_model_cache_from_environment(read_config(config_path))
    paths = [_find_benchmark(f) for f in files]
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = tqdm(total=total, desc=stage, unit="", file=sys.stderr)
        bars[stage].update(done - bars[stage].n)

    try:
        modes = MODES if mode == "all" else (mode,)
        results = evaluate(paths, config, cached(load_embedder(config), config), modes, progress)
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        for bar in bars.values():
            bar.close()
    click.echo(format_eval_table(results))
    if json_out:
        json_out.write_text(json.dumps({"results": results}, ensure_ascii=False, indent=2),
                            encoding="utf-8")
        click.echo(f"wrote {json_out}")


def _find_benchmark(path: Path) -> Path:
    """The file as given, or else by that name under ./benchmarks or ../shared/benchmarks."""
    if path.is_file():
        return path
    for folder in (Path("benchmarks"), Path("../shared/benchmarks")):
        matches = sorted(folder.rglob(path.name)) if folder.is_dir() else []
        if matches:
            return matches[0]
    raise click.ClickException(f"no such file: {path}")


def format_eval_table(results: list[dict[str, Any]]) -> str:
    """A Markdown table of `qa eval` results."""
    columns = ["file", "mode", "questions", "paragraphs", "recall@1", "recall@5",
               "recall@10", "mrr@10", "ndcg@10", "sentence@1", "latency_ms_p50"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in results:
        cells = [f"{row[c]:.3f}" if isinstance(row.get(c), float) and c != "latency_ms_p50"
                 else "–" if row.get(c) is None else str(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _open_retriever(config: Config):
    from qa.index.saved_index import open_index
    from qa.retriever import Retriever

    engine = open_index(config)  # fails fast, before the model loads, if there is no index
    return Retriever(config, engine, load_embedder(config))


def _questions(stream: TextIO) -> Iterator[str]:
    for line in stream:
        if line.strip():
            yield line.strip()


def _format_json(answer: Answer) -> str:
    return json.dumps(answer.to_dict(), ensure_ascii=False)


def format_answer(answer: Answer) -> str:
    """Human-readable answer: rank, score, citation, and the passage with its best sentence."""
    lines = [click.style(f"问：{answer.question}", bold=True) + f"  ({answer.took_ms:.0f} ms)"]
    if not answer.filters.is_empty():
        shown = ", ".join(f"{k}={'|'.join(v) if isinstance(v, list) else v}"
                          for k, v in answer.filters.to_dict().items())
        lines.append(f"只看：{shown}（{answer.documents_matched} 篇文章）")
    if not answer.passages:
        lines.append("No passages found.")
    for passage in answer.passages:
        c = passage.citation
        lines.append("")
        lines.append(
            click.style(f"[{passage.rank}] {passage.score:.3f}  ", fg="cyan")
            + click.style(c.title or c.doc_id, bold=True)
        )
        where = [c.source, c.date, f"第{c.paragraph}段", c.section]
        lines.append("    " + " · ".join(part for part in where if part) + f"  ({c.doc_id})")
        start, end = passage.highlight
        # 【】 marks the sentence even where colours are stripped (pipes, files).
        marked = click.style(f"【{passage.text[start:end]}】", fg="yellow", bold=True)
        text = passage.text[:start] + marked + passage.text[end:]
        lines.extend("    " + line for line in text.split("\n"))
        if c.url:
            lines.append("    " + click.style(c.url, dim=True))
        if passage.also_in:
            copies = "、".join(f"{x.source or x.title or x.doc_id} ({x.doc_id})"
                              for x in passage.also_in)
            lines.append("    " + click.style(f"亦见于：{copies}", dim=True))
    return "\n".join(lines)


@main.command("serve")
@click.option("--host", default=None, help="Address to listen on (default: server.host).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None,
    help="Port to listen on (default: server.port; 0 picks a free one).",
)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=None,
    help="Server processes sharing the port (default: server.workers, 1).",
)
@config_option
def serve_command(host: str | None, port: int | None, workers: int | None,
                  config_path: Path | None) -> None:
    """Serve the chat page and the JSON API until Ctrl-C or SIGTERM."""
    from qa.web.server import make_server, serve

    config = read_config(config_path)
    workers = workers or config.server.workers
    if config.model.threads == 0 and (config.model.backend == "torch" or workers > 1):
        # torch's spinning pool fights the request threads (a question took 6x longer
        # under contention); ONNX Runtime's spinning is off, and 2 threads served 6-14%
        # more requests than 1 at concurrency 4 (README, "Speed: embedding"). With several
        # workers the processes already use the cores: one thread each served as many
        # requests or more for less CPU (README, "One port, two workers").
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, threads=1))
    # The request log (method, path, status, ms) is the point of a server's output.
    logging.getLogger("qa.web").setLevel(logging.INFO)
    host = host or config.server.host
    port = config.server.port if port is None else port
    if host in ("0.0.0.0", "::", "") and not config.server.allowed_hosts:
        click.echo(f"note: listening on all addresses ({host or '*'}), but only loopback Host "
                   "names are accepted; list the names clients use in server.allowed_hosts",
                   err=True)
    if workers > 1:
        _serve_workers(config, host, port, workers)
        return
    app = _open_app(config)[0]
    try:
        server = make_server(app, host, port, config.server.threads, config.server)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                                   ) from None
    serve(server, announce=lambda url: click.echo(f"serving on {url} (Ctrl-C to stop)"),
          close=app.extensions["qa_retriever"].engine.close)


def _open_app(config: Config) -> tuple[Any, Callable[[], None]]:
    """The web app over the configured index and model, and what closes it."""
    from qa.web import create_app

    try:
        app = create_app(config, retriever=_open_retriever(config))
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    return app, app.extensions["qa_retriever"].engine.close


def _serve_workers(config: Config, host: str, port: int, workers: int) -> None:
    """`qa serve --workers N`: the supervisor; each worker opens the app after the fork."""
    from qa.preload import load_before_fork
    from qa.web.workers import Supervisor, WorkersFailed, listening_socket

    def open_app() -> tuple[Any, Callable[[], None]]:
        # In the worker: what would end `qa serve` in one line goes to the supervisor.
        import sqlite3

        try:
            return _open_app(config)
        except click.ClickException as exc:
            raise QAError(exc.message) from None
        except (sqlite3.DatabaseError, OSError) as exc:
            raise QAError(one_line(exc)) from None

    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                                   ) from None
    supervisor = Supervisor(
        workers, host, sock, open_app, config.server.threads, config.server,
        announce=lambda url: click.echo(f"serving on {url} with {workers} workers "
                                        "(Ctrl-C to stop)"),
        load_shared=lambda: load_before_fork(config))
    try:
        code = supervisor.run()
    except WorkersFailed as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
