"""HTML bodies of exported news posts -> raw paragraphs and headings.

The posts are `<p>…</p>` runs followed by Markdown-ish trailer lines (the original URL in
angle brackets, "返回…" navigation links). Regular expressions are enough for that shape and,
unlike an HTML parser, leave `<http://…>` autolinks alone for the loader to read.
"""

from __future__ import annotations

import html
import re

from .markdown_text import RawBlock, join_lines, split_markdown

_IGNORED = re.compile(r"<!--.*?-->|<(script|style)\b[^>]*>.*?</\1\s*>", re.S | re.I)
_BLOCK = re.compile(r"<(p|h[1-6]|li)\b[^>]*>(.*?)</\1\s*>", re.S | re.I)
_LINE_BREAK = re.compile(r"<br\s*/?>", re.I)
# Outside the matched blocks these tags still separate paragraphs (also an unclosed <p>).
_BLOCK_BOUNDARY = re.compile(
    r"</?(?:p|h[1-6]|li|div|section|article|header|footer|table|tr|ul|ol|blockquote)\b[^>]*>",
    re.I,
)
# Any tag except a `<http://…>` autolink, which carries the article's original URL.
_TAG = re.compile(r"<(?!https?://)[^>]*>", re.I)
_STRONG = re.compile(r"<(strong|b)\b[^>]*>.*?</\1\s*>", re.S | re.I)
# Block elements only: Markdown with inline HTML (<br>, <span>) is still Markdown.
_HTML_HINT = re.compile(
    r"<(?:p|div|h[1-6]|li|ul|ol|table|article|section|blockquote)\b[^>]*>", re.I
)


def looks_like_html(body: str) -> bool:
    """True if the body is HTML markup rather than plain text or Markdown."""
    return _HTML_HINT.search(body) is not None


def split_html(body: str) -> list[RawBlock]:
    """Split an HTML body into blocks in reading order.

    Each `<p>`, `<li>` and `<h1>`…`<h6>` is one block, with inner tags stripped and entities
    decoded. A `<p>` whose visible text is all `<strong>`/`<b>` is a heading. Text between
    those elements (the trailer lines after the body) is read as plain text / Markdown.
    """
    body = _IGNORED.sub("", body)
    blocks: list[RawBlock] = []
    position = 0
    for match in _BLOCK.finditer(body):
        blocks.extend(_loose_blocks(body[position : match.start()]))
        tag, inner = match.group(1).lower(), match.group(2)
        blocks.append(
            RawBlock(
                _visible_text(inner),
                is_heading=tag.startswith("h") or _is_strong_only(inner),
                is_list_item=tag == "li",
            )
        )
        position = match.end()
    blocks.extend(_loose_blocks(body[position:]))
    return [block for block in blocks if block.text]


def _visible_text(fragment: str) -> str:
    """The text a reader sees: tags stripped, entities decoded, source line breaks joined."""
    text = _LINE_BREAK.sub("\n", fragment)
    text = html.unescape(_TAG.sub("", text))
    return join_lines(line for line in text.split("\n") if line.strip())


def _is_strong_only(fragment: str) -> bool:
    """True if the fragment has bold text and nothing visible outside the bold tags."""
    if _STRONG.search(fragment) is None:
        return False
    rest = html.unescape(_TAG.sub("", _STRONG.sub("", fragment)))
    return not rest.strip()


def _loose_blocks(segment: str) -> list[RawBlock]:
    """Blocks from text outside `<p>`/`<li>`/`<h*>` elements, read as Markdown."""
    if not segment.strip():
        return []
    text = _BLOCK_BOUNDARY.sub("\n\n", segment)
    text = _LINE_BREAK.sub("\n", text)
    return split_markdown(html.unescape(_TAG.sub("", text)))
