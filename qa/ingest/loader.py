"""Corpus folders and files -> `Document`s: which files to read, their ids, which reader.

`corpus_files` walks a folder (recursively, hidden entries skipped, an allow-list of
extensions and a size limit from `IngestConfig`); `load_file` turns one file into its
documents with the reader for its format; `load_corpus` does both for a whole folder.

Document ids: a file directly in the corpus folder keeps its stem ("003_f6f549922cc68d70");
a file in a subfolder gets its relative path with "-" between the parts ("2024-03-foo" for
2024/03/foo.txt), every character other than letters, digits and "-._~" replaced by "_".
Several documents from one file get "-2", "-3"… after the file's id (reports), or the
record's id or a hash of it after the file's id (news exports; see `news_export.py`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path

from qa.config import IngestConfig

from .doc_ids import file_doc_id
from .document import Document
from .load_errors import LoadError, LoadResult, SkippedFile
from .text_file import read_text_file

__all__ = [
    "LoadError",
    "LoadResult",
    "SkippedFile",
    "corpus_files",
    "file_doc_id",
    "load_corpus",
    "load_document",
    "load_file",
]

logger = logging.getLogger(__name__)

_WEB_PAGE_HINT = re.compile(rb"<(?:!doctype\s+html|html[\s>]|head[\s>])", re.I)
_EXPORTS = (".jsonl", ".json", ".csv")


def corpus_files(
    folder: Path, settings: IngestConfig | None = None
) -> tuple[list[Path], list[SkippedFile]]:
    """Every loadable file under `folder`, recursively, sorted by relative path, and the files
    not loaded because of their type or size (each reported once).

    Hidden files and folders (".git", ".gitkeep") are skipped silently; symlinked folders
    are not followed. Raises `LoadError` if `folder` is missing or unreadable.
    """
    settings = settings or IngestConfig()
    folder = Path(folder)
    try:
        found = sorted(_walk(folder, folder), key=lambda item: item[0])
    except OSError as exc:
        raise LoadError(f"cannot list corpus folder {folder}: {exc.strerror or exc}") from exc
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    for _, path, problem in found:
        reason = problem or _not_loadable(path, settings)
        if reason is None:
            files.append(path)
        else:
            logger.info("skipping %s: %s", path, reason)
            skipped.append(SkippedFile(path=str(path), reason=reason))
    return files, skipped


def load_file(
    path: Path, root: Path | None = None, settings: IngestConfig | None = None
) -> list[Document]:
    """All documents in one file: one for an article, one per record of a JSON Lines / CSV
    export, one per report of a multi-report file. `root` (the corpus folder) makes the ids
    of files in subfolders unique. Raises `LoadError(short reason)` if nothing is usable."""
    settings = settings or IngestConfig()
    path = Path(path)
    reason = _not_loadable(path, settings)
    if reason is not None:
        raise LoadError(reason)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from exc
    doc_id = file_doc_id(path, root)
    suffix = path.suffix.lower()
    if suffix in _EXPORTS:
        from .news_export import read_export

        return read_export(data, path, doc_id, settings.export_fields)
    if suffix == ".pdf":
        from .pdf_file import read_pdf

        return read_pdf(data, path, doc_id, split=settings.split_reports)
    if suffix == ".docx":
        from .docx_file import read_docx

        return read_docx(data, path, doc_id, split=settings.split_reports)
    if suffix in (".html", ".htm") and _WEB_PAGE_HINT.search(data[:65536]):
        from .web_page import read_web_page

        return read_web_page(data, path, doc_id, split=settings.split_reports)
    # Text, Markdown, front-matter posts and HTML fragments (a post's body saved as .html).
    return read_text_file(data, path, doc_id, split=settings.split_reports)


def load_corpus(folder: Path, settings: IngestConfig | None = None) -> LoadResult:
    """Load every loadable file under `folder` (see `corpus_files`), in relative-path order.

    A file that cannot be read or parsed is logged and recorded in `skipped`; it never stops
    the run, and neither does a document whose id an earlier one already has. Raises
    `LoadError` only if `folder` itself is missing or unreadable.
    """
    folder = Path(folder)
    paths, skipped = corpus_files(folder, settings)
    documents: list[Document] = []
    loaded_from: dict[str, str] = {}
    for path in paths:
        try:
            loaded = load_file(path, folder, settings)
        except LoadError as exc:
            loaded, reason = [], str(exc)
        except Exception as exc:  # a parser bug on one file must not lose the whole corpus
            logger.exception("unexpected error loading %s", path)
            loaded, reason = [], f"unexpected error: {type(exc).__name__}: {exc}"
        else:
            reason = None
        for document in loaded:
            if document.doc_id not in loaded_from:
                loaded_from[document.doc_id] = path.relative_to(folder).as_posix()
                documents.append(document)
                continue
            # "a.txt" and "a.md" have one id; so do two records with the same id field.
            first = loaded_from[document.doc_id]
            duplicate = f"duplicate doc_id {document.doc_id!r} (already loaded from {first})"
            logger.info("skipping %s: %s", path, duplicate)
            skipped.append(SkippedFile(path=str(path), reason=duplicate))
        if reason is not None:
            logger.info("skipping %s: %s", path, reason)
            skipped.append(SkippedFile(path=str(path), reason=reason))
    logger.info("loaded %d documents from %s, skipped %d", len(documents), folder, len(skipped))
    return LoadResult(documents=documents, skipped=skipped)


def load_document(path: Path) -> Document:
    """Load a single-document file as one document (reports are not split). Raises
    `LoadError` with a short reason if it cannot be used or holds several records."""
    documents = load_file(path, settings=dataclasses.replace(IngestConfig(), split_reports=False))
    if len(documents) != 1:
        raise LoadError(f"holds {len(documents)} documents; use load_file")
    return documents[0]


def _walk(folder: Path, root: Path) -> list[tuple[str, Path, str | None]]:
    """(relative path, path, problem) of every non-hidden file under `folder`; an unreadable
    subfolder is one entry with its problem. Raises OSError only for `root` itself."""
    found: list[tuple[str, Path, str | None]] = []
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        if folder == root:
            raise
        relative = folder.relative_to(root).as_posix()
        found.append((relative, folder, f"cannot list folder: {exc.strerror or exc}"))
        return found
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            found.extend(_walk(path, root))
        elif entry.is_file():
            found.append((path.relative_to(root).as_posix(), path, None))
    return found


def _not_loadable(path: Path, settings: IngestConfig) -> str | None:
    """Why a file is not read at all (its type, its size), or None."""
    suffix = path.suffix.lower()
    if suffix not in settings.extensions:
        return f"unsupported type {suffix or '(no extension)'}"
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    if size > settings.max_file_bytes:
        return (
            f"file too large: {_megabytes(size)} is over the {_megabytes(settings.max_file_bytes)}"
            " limit (ingest.max_file_bytes in config.yaml)"
        )
    return None


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
