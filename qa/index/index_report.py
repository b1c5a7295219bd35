"""What an indexing run reports: where it is (Progress) and what it did (IndexReport)."""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.ingest.loader import SkippedFile


@dataclass
class Progress:
    """Where a run is: bytes of files read of those to read, documents and passages."""

    bytes_done: int = 0
    bytes_total: int = 0
    documents: int = 0
    passages: int = 0


@dataclass
class IndexReport:
    """What a run did, document by document."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    # Documents read from changed files, by file type (".pdf": 3); an export counts
    # its records.
    loaded: dict[str, int] = field(default_factory=dict)
    passages: int = 0
    embed_seconds: float = 0.0
    seconds: float = 0.0
    # Seconds by stage: "load" (read, parse, chunk), "tokenize" (jieba; the wait for the
    # worker when it tokenises), "embed", "store" (the commits).
    stages: dict[str, float] = field(default_factory=dict)

    def add_time(self, stage: str, seconds: float) -> None:
        self.stages[stage] = self.stages.get(stage, 0.0) + seconds

    def summary(self) -> str:
        return (f"{len(self.added)} added, {len(self.replaced)} replaced, "
                f"{len(self.removed)} removed, {self.unchanged} unchanged, "
                f"{len(self.skipped)} skipped")
