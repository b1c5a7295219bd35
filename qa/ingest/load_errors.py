"""The loader's error and result types, shared by the per-format readers."""

from __future__ import annotations

from dataclasses import dataclass

from .document import Document


class LoadError(Exception):
    """A file could not be turned into a Document; the message is a short reason."""


@dataclass(frozen=True)
class SkippedFile:
    """A corpus file (or one record of an export) that was not loaded, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class LoadResult:
    """The documents of a corpus folder, in relative-path order, and the files skipped."""

    documents: list[Document]
    skipped: list[SkippedFile]
