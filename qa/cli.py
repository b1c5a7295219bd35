"""The `qa` command: parses arguments, shows progress, prints. The work is in the library."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import click

from qa.answer import Answer
from qa.config import MODES, Config, config_from_mapping, load_config, resolve_paths
from qa.embedder import Embedder, SentenceTransformerEmbedder
from qa.errors import QAError

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("config.yaml")


def load_embedder(config: Config) -> Embedder:
    """The configured embedding model (tests replace this with a fake)."""

    def status(message: str) -> None:
        click.echo(f"model: {message}", err=True)

    return SentenceTransformerEmbedder(config.model, status=status)


def cached(embedder: Embedder, config: Config) -> Embedder:
    """The embedder behind a cache of passage vectors, so rebuilds embed only what changed."""
    from qa.embedding_cache import CachedEmbedder

    salt = f"{config.model.query_prompt}|{config.model.passage_prompt}"
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


@click.group()
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
@config_option
def index_command(corpus_dir: Path | None, index_dir: Path | None, config_path: Path | None):
    """Load, chunk and embed the corpus into the index folder."""
    from tqdm import tqdm

    from qa.index.saved_index import build_index

    config = read_config(config_path)
    corpus_dir = (corpus_dir or config.corpus_dir).resolve()
    index_dir = (index_dir or config.index_dir).resolve()
    bar: tqdm | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="embedding", unit="passage", file=sys.stderr)
        bar.update(done - bar.n)

    try:
        embedder = cached(load_embedder(config), config)
        report = build_index(config, embedder, corpus_dir, index_dir, progress=progress)
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
    for skipped in report.skipped:
        click.echo(f"skipped {skipped.path}: {skipped.reason}", err=True)
    reused = getattr(embedder, "reused", 0)
    embedded = report.chunks - reused
    speed = (f"{embedded / report.embed_seconds:.1f} passages/s"
             if embedded and report.embed_seconds > 0 else "nothing new to embed")
    cache_note = f", {reused} vectors reused from the cache" if reused else ""
    click.echo(
        f"indexed {report.documents} documents, {report.chunks} chunks "
        f"({len(report.skipped)} files skipped{cache_note}) in {report.seconds:.1f} s, "
        f"{speed} -> {index_dir}"
    )


@main.command("ask")
@click.argument("question", required=False)
@click.option("-k", "--top-k", type=int, default=None, help="How many passages (default 5).")
@click.option(
    "--mode", type=click.Choice(MODES), default=None,
    help="How to search (default from config: hybrid).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
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
    question_file: TextIO | None,
    config_path: Path | None,
) -> None:
    """Answer QUESTION with the best passages of the index and their citations."""
    if (question is None) == (question_file is None):
        raise click.UsageError("give either a QUESTION or --file FILE")
    config = read_config(config_path)
    try:
        retriever = _open_retriever(config)
        if question is not None:
            answer = retriever.ask(question, top_k, mode)
            click.echo(_format_json(answer) if as_json else format_answer(answer))
            return
        for line in _questions(question_file):
            try:
                answer = retriever.ask(line, top_k, mode)
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

    from qa.evaluation import evaluate

    config = read_config(config_path)
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

    index = open_index(config)  # fails fast, before the model loads, if there is no index
    return Retriever(config, index, load_embedder(config))


def _questions(stream: TextIO) -> Iterator[str]:
    for line in stream:
        if line.strip():
            yield line.strip()


def _format_json(answer: Answer) -> str:
    return json.dumps(answer.to_dict(), ensure_ascii=False)


def format_answer(answer: Answer) -> str:
    """Human-readable answer: rank, score, citation, and the passage with its best sentence."""
    lines = [click.style(f"问：{answer.question}", bold=True) + f"  ({answer.took_ms:.0f} ms)"]
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
@config_option
def serve_command(host: str | None, port: int | None, config_path: Path | None) -> None:
    """Serve the chat page and the JSON API until Ctrl-C or SIGTERM."""
    from qa.web import create_app
    from qa.web.server import make_server, serve

    config = read_config(config_path)
    # The request log (method, path, status, ms) is the point of a server's output.
    logging.getLogger("qa.web").setLevel(logging.INFO)
    try:
        app = create_app(config, retriever=_open_retriever(config))
    except QAError as exc:
        raise click.ClickException(str(exc)) from None
    host = host or config.server.host
    port = config.server.port if port is None else port
    try:
        server = make_server(app, host, port, config.server.threads)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                                   ) from None
    serve(server, announce=lambda url: click.echo(f"serving on {url} (Ctrl-C to stop)"))


if __name__ == "__main__":  # pragma: no cover
    main()
