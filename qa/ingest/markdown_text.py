"""Plain-text and Markdown files -> front matter and raw paragraphs and headings, plus the
text helpers the HTML parser and the loader share.

Some exported articles have paragraphs cut mid-sentence by blank lines, so this module also
decides whether a paragraph ends a sentence and glues cut paragraphs back together.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import yaml

from qa.ingest.sentences import ends_sentence

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawBlock:
    """A paragraph, heading or list item before metadata lines and bylines are removed."""

    text: str
    is_heading: bool = False
    is_list_item: bool = False


_FRONT_MATTER = re.compile(r"\A\s*---[ \t]*\n(?:(.*?)\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_FRONT_MATTER_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_FRONT_MATTER_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)[ \t]*:[ \t]*(.*)$")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_LIST_ITEM = re.compile(r"^(?:[-*+]|\d{1,3}[.)])[ \t]+(.*)$")
_THEMATIC_BREAK = re.compile(r"^([-*_])(?:[ \t]*\1){2,}$")

_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
# Inline HTML in Markdown; a letter must follow "<" so "增长率<5%" is left alone.
_INLINE_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_WHITESPACE = re.compile(r"\s+")

# A byline is a short line naming the reporters: "本报记者 齐旭", "记者：张三 李四",
# "本报讯（记者 王五）". The bare roles need a separator so "记者节" is not one.
_BYLINE = re.compile(
    r"^(?:(?:本报讯|本报记者|本报通讯员|特约记者|见习记者|实习记者)[\s:：（(]*"
    r"|(?:记者|通讯员|实习生)[\s:：（(]+)"
    r"[\w·\s、（）()]*$"
)
_BYLINE_MAX_CHARS = 30
_BYLINE_FORBIDDEN = frozenset('。！？!?；;，,“”"')


def is_wide(char: str) -> bool:
    """True for CJK characters and full-width punctuation, which are written without spaces."""
    return unicodedata.east_asian_width(char) in ("W", "F")


def join_fragments(left: str, right: str) -> str:
    """Join two pieces of one paragraph: no space next to CJK text, one space between Latin."""
    if not left or not right:
        return left or right
    if is_wide(left[-1]) or is_wide(right[0]):
        return left + right
    return left + " " + right


def join_lines(lines: Iterable[str]) -> str:
    """Join the stripped, non-empty lines of one paragraph with `join_fragments`."""
    text = ""
    for line in lines:
        text = join_fragments(text, line.strip())
    return text


def collapse_whitespace(text: str) -> str:
    """Collapse runs of whitespace (including full-width spaces) to one space and strip."""
    return _WHITESPACE.sub(" ", text).strip()


def has_word_char(text: str) -> bool:
    """True if `text` has a letter, digit or CJK character (not just dots or dashes)."""
    return any(char.isalnum() for char in text)


def is_byline(text: str) -> bool:
    """True for a short reporter line such as "本报记者 齐旭" (no sentence punctuation)."""
    text = text.strip()
    if len(text) > _BYLINE_MAX_CHARS or any(char in _BYLINE_FORBIDDEN for char in text):
        return False
    return _BYLINE.match(text) is not None


def strip_inline_markup(text: str) -> str:
    """Remove images and inline HTML tags; unwrap links, autolinks and **bold** to their text."""
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _INLINE_TAG.sub("", text)
    return _BOLD.sub(lambda match: match.group(1) or match.group(2), text)


def split_front_matter(text: str, name: str = "") -> tuple[dict[str, Any], str]:
    """Split `---` YAML front matter off a text: (mapping with lower-case keys, body).

    Without usable front matter the mapping is empty and the body is the whole text.
    `name` (the file's) only labels the warning logged for front matter that is not YAML.
    """
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, text
    raw = match.group(1) or ""
    try:
        meta = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        # Hand-written front matter often has an unquoted "title: a: b"; keep what we can.
        logger.warning("%s: front matter is not valid YAML, read line by line: %s", name, exc)
        meta = _front_matter_lines(raw)
        if meta is None:
            return {}, text
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(
        isinstance(key, str) and _FRONT_MATTER_KEY.match(key) for key in meta
    ):
        # "---" lines around ordinary text (thematic breaks), such as "注意: 内容".
        return {}, text
    return {str(key).lower(): value for key, value in meta.items()}, text[match.end() :]


def _front_matter_lines(raw: str) -> dict[str, str] | None:
    """`key: value` lines, quotes removed; None if some non-blank line is not one."""
    meta: dict[str, str] = {}
    for line in raw.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _FRONT_MATTER_LINE.match(line)
        if match is None:
            return None
        meta[match.group(1)] = match.group(2).strip().strip("\"'")
    return meta


def split_markdown(body: str) -> list[RawBlock]:
    """Split a plain-text or Markdown body into paragraphs, `#` headings and list items.

    Paragraphs are separated by blank lines; the lines inside one are joined (without a
    space for Chinese). Each list item is its own block, with its marker removed.
    """
    blocks: list[RawBlock] = []
    lines: list[str] = []
    in_list_item = False

    def flush() -> None:
        nonlocal in_list_item
        if lines:
            blocks.append(RawBlock(join_lines(lines), is_list_item=in_list_item))
            lines.clear()
        in_list_item = False

    for raw_line in body.splitlines():
        line = raw_line.strip()
        if not line or _THEMATIC_BREAK.match(line):
            flush()
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            blocks.append(RawBlock(heading.group(2).strip(), is_heading=True))
            continue
        item = _LIST_ITEM.match(line)
        if item:
            flush()
            in_list_item = True
            lines.append(item.group(1))
            continue
        # A non-marker line right after a list item continues that item (Markdown's lazy
        # continuation); otherwise it continues the current paragraph.
        lines.append(line)
    flush()
    return blocks


def rejoin_cut_paragraphs(blocks: Sequence[RawBlock]) -> list[RawBlock]:
    """Glue a paragraph that does not end a sentence to the text paragraph after it.

    Headings are never glued, in either direction; a list item never continues the block
    before it (a lead-in such as "…五方面工作：" stays its own paragraph); and a block with no
    letter, digit or CJK character ("——") takes nothing, though it may be taken ("。”").
    """
    joined: list[RawBlock] = []
    for block in blocks:
        previous = joined[-1] if joined else None
        if (
            previous is not None
            and not previous.is_heading
            and has_word_char(previous.text)
            and not block.is_heading
            and not block.is_list_item
            and not ends_sentence(previous.text)
        ):
            logger.debug("rejoining cut paragraph %r + %r", previous.text[-10:], block.text[:10])
            # Nothing goes between the halves: the cut can fall inside a word or a number.
            joined[-1] = replace(previous, text=previous.text + block.text)
        else:
            joined.append(block)
    return joined
