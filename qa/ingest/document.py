"""The loader's output: a document's metadata and its clean text as paragraphs."""

from __future__ import annotations

from dataclasses import dataclass, field

# Paragraphs of a document's clean text are joined with this separator, so a
# paragraph's offsets into `Document.text` follow from the texts alone.
PARAGRAPH_SEPARATOR = "\n"


@dataclass(frozen=True)
class Block:
    """One paragraph or heading of a document's clean text."""

    text: str
    is_heading: bool = False


@dataclass(frozen=True)
class Document:
    """A loaded source document. `blocks` is the clean text, in reading order."""

    doc_id: str
    path: str
    blocks: tuple[Block, ...]
    title: str | None = None
    date: str | None = None
    source: str | None = None
    url: str | None = None
    category: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    # Who wrote it (a byline's reporters, a page's or file's author); optional, added last.
    author: str | None = None

    @property
    def text(self) -> str:
        """The clean text: every block, headings included, one per line."""
        return PARAGRAPH_SEPARATOR.join(block.text for block in self.blocks)

    def block_spans(self) -> list[tuple[int, int]]:
        """(start, end) of each block in `text`."""
        spans = []
        position = 0
        for block in self.blocks:
            spans.append((position, position + len(block.text)))
            position += len(block.text) + len(PARAGRAPH_SEPARATOR)
        return spans

    def paragraph_numbers(self) -> list[int | None]:
        """1-based paragraph number of each block; headings are not numbered (None)."""
        numbers: list[int | None] = []
        count = 0
        for block in self.blocks:
            if block.is_heading:
                numbers.append(None)
            else:
                count += 1
                numbers.append(count)
        return numbers
