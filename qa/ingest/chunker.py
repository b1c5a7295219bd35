"""Document -> paragraph chunks whose offsets point exactly into the clean text."""

from __future__ import annotations

import math
from dataclasses import dataclass

from qa.config import ChunkingConfig
from qa.ingest.document import Document
from qa.ingest.sentences import sentence_spans, split_long_sentence


@dataclass(frozen=True)
class Chunk:
    """A passage: `document.text[char_start:char_end] == text`.

    It covers paragraphs `paragraph` to `paragraph_end` (equal unless short ones merged).
    """

    doc_id: str
    ordinal: int
    text: str
    section: str | None
    paragraph: int
    char_start: int
    char_end: int
    paragraph_end: int


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    paragraph: int
    section: str | None
    # Which heading the piece falls under: pieces merge only under the same one.
    section_number: int


def chunk_document(document: Document, settings: ChunkingConfig) -> list[Chunk]:
    """Split a document into chunks: long paragraphs at sentence ends, short ones merged."""
    text = document.text
    pieces = _paragraph_pieces(document, settings.max_chars)
    merged = _merge_short(pieces, settings.min_chars, settings.max_chars)
    return [
        Chunk(
            doc_id=document.doc_id,
            ordinal=ordinal,
            text=text[first.start : last.end],
            section=first.section,
            paragraph=first.paragraph,
            char_start=first.start,
            char_end=last.end,
            paragraph_end=last.paragraph,
        )
        for ordinal, (first, last) in enumerate(merged)
    ]


def embedding_text(chunk: Chunk, title: str | None, settings: ChunkingConfig) -> str:
    """The text the model embeds for a chunk: optional title and section, then the passage."""
    return _headed_text(chunk, title, settings.embed_title, settings)


def keyword_text(chunk: Chunk, title: str | None, settings: ChunkingConfig) -> str:
    """The text the keyword index tokenises for a chunk: as the embedded text, but with
    the title when `keyword_title` is on, whether or not the model embeds it."""
    return _headed_text(chunk, title, settings.keyword_title, settings)


def _headed_text(chunk: Chunk, title: str | None, with_title: bool,
                 settings: ChunkingConfig) -> str:
    lines = []
    if with_title and title:
        lines.append(title)
    if settings.embed_section and chunk.section and chunk.section != title:
        lines.append(chunk.section)
    lines.append(chunk.text)
    return "\n".join(lines)


def _paragraph_pieces(document: Document, max_chars: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    section: str | None = None
    section_number = 0
    spans = document.block_spans()
    numbers = document.paragraph_numbers()
    for block, (start, _end), number in zip(document.blocks, spans, numbers, strict=True):
        if block.is_heading:
            section = block.text
            section_number += 1
            continue
        assert number is not None
        for piece_start, piece_end in split_paragraph(block.text, max_chars):
            pieces.append(
                _Piece(start + piece_start, start + piece_end, number, section, section_number)
            )
    return pieces


def split_paragraph(text: str, max_chars: int) -> list[tuple[int, int]]:
    """Spans of `text` of at most `max_chars`, cut only at sentence ends where possible.

    Pieces are balanced: a 500-character paragraph with a 220 limit becomes three
    pieces of about 170, not 220 + 220 + 60.
    """
    if len(text) <= max_chars:
        return [(0, len(text))]
    target = len(text) / math.ceil(len(text) / max_chars)
    sentences: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        sentences.extend(split_long_sentence(text, start, end, max_chars))
    pieces: list[tuple[int, int]] = []
    piece_start, piece_end = sentences[0]
    for start, end in sentences[1:]:
        too_long = end - piece_start > max_chars
        if too_long or piece_end - piece_start >= target:
            pieces.append((piece_start, piece_end))
            piece_start = start
        piece_end = end
    pieces.append((piece_start, piece_end))
    return pieces


def _merge_short(
    pieces: list[_Piece], min_chars: int, max_chars: int
) -> list[tuple[_Piece, _Piece]]:
    """Group consecutive pieces of one section so that short ones join a neighbour."""
    groups: list[tuple[_Piece, _Piece]] = []
    for piece in pieces:
        if groups:
            first, last = groups[-1]
            short = (piece.end - piece.start) < min_chars or (last.end - first.start) < min_chars
            fits = piece.end - first.start <= max_chars
            if short and fits and piece.section_number == first.section_number:
                groups[-1] = (first, piece)
                continue
        groups.append((piece, piece))
    return groups
