"""Conventions of Chinese news text: headlines, bylines, date and source lines, ISO dates.

These read single lines or paragraphs; `article.py` decides where in a document they apply
(a headline only as the first line, date lines only near the top, bylines anywhere).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from .markdown_text import collapse_whitespace, has_word_char, is_byline
from .sentences import ends_sentence

# A first line up to this long, without sentence-final punctuation, is a headline.
HEADLINE_MAX_CHARS = 40
# A date/source line is at most this long ("2024-05-10 09:30 来源：浙江日报 作者：张三").
DATELINE_MAX_CHARS = 80

_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_TIME = re.compile(r"\d{1,2}\s*[:：]\s*\d{2}(?:\s*[:：]\s*\d{2})?")
_WEEKDAY = re.compile(r"(?:星期|周|礼拜)[一二三四五六日天]")
# Labels of the fields a date/source line may carry, and which of ours each fills.
_LABEL = re.compile(
    r"(来源|稿源|出处|作者|记者|通讯员|编辑|责任编辑|责编|发布时间|发布日期|发表时间|"
    r"更新时间|时间|日期|字号|浏览次数|阅读量|点击数)\s*[:：]\s*"
)
_LABEL_FIELD = {"来源": "source", "稿源": "source", "出处": "source", "作者": "author",
                "记者": "author", "通讯员": "author"}
_SEPARATORS = " \t|｜·•/丨-—　"
_CLAUSE_END = tuple("，,、：:；;（(《“‘-—")
_SENTENCE_PUNCTUATION = frozenset("。！？!?；;")

# Reporter roles in a byline, removed to leave the names.
_ROLES = re.compile(
    r"本报讯|本报记者|本报通讯员|本报|特约记者|见习记者|实习记者|首席记者|记者|通讯员|实习生|"
    r"文\s*[/／]|图\s*[/／]|摄影?"
)
_NAME_SEPARATORS = re.compile(r"[\s、，,:：（）()]+")
# "本报讯（记者 张三）…", "本报杭州5月9日讯（记者 张三 通讯员 李四）…",
# "新华社北京5月9日电（记者 王五）…" opening the first paragraph.
_BYLINE_PREFIX = re.compile(
    r"^(?:本报讯|本报\w{0,12}?讯|(?P<agency>\w{1,8}?(?:社|网|台))\w{0,12}?电)\s*"
    r"[（(](?P<names>(?:本报|特约|见习|实习|首席)?(?:记者|通讯员|实习生)[^（()）]{0,40})[）)]\s*"
)


@dataclass(frozen=True)
class Dateline:
    """What a date/source line near the top of an article says."""

    date: str | None = None
    source: str | None = None
    author: str | None = None


def iso_date(value: Any) -> str | None:
    """`YYYY-MM-DD` for a date, a datetime or text such as "2024年5月10日", "2024/5/10 9:30",
    "20240510" or "2024-05-10T08:00:00+08:00"; None when there is no valid date in it."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()  # the date where it was written, not in UTC
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    match = _DATE.search(text) or _COMPACT_DATE.fullmatch(text)
    if match is None:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups())).isoformat()
    except ValueError:  # "2022-13-45"
        return None


def is_headline(line: str) -> bool:
    """True for a short line that reads as a title: no sentence or clause punctuation at its
    end, not a byline, a date/source line or a link."""
    line = collapse_whitespace(line)
    if not 2 <= len(line) <= HEADLINE_MAX_CHARS or not has_word_char(line):
        return False
    if ends_sentence(line) or line.endswith(_CLAUSE_END):
        return False
    if line.startswith(("#", "<", "[", "!", "-", "*", "http")):
        return False
    return not is_byline(line) and read_dateline(line) is None


def read_dateline(text: str) -> Dateline | None:
    """The date, source and author of a line such as "2024-05-10 来源：浙江日报",
    "2024年5月10日 09:30 | 来源：新华社 | 作者：张三" or "发布时间：2024-05-10"; None for
    any other text (a sentence that mentions a date is not a date line)."""
    text = collapse_whitespace(text)
    if not text or len(text) > DATELINE_MAX_CHARS:
        return None
    if any(char in _SENTENCE_PUNCTUATION for char in text):
        return None
    labels = list(_LABEL.finditer(text))
    lead = text[: labels[0].start()] if labels else text
    date = iso_date(lead)
    if _strip_date_parts(lead):
        return None  # words before the first label: not a date line
    fields: dict[str, str] = {}
    for index, label in enumerate(labels):
        end = labels[index + 1].start() if index + 1 < len(labels) else len(text)
        value = text[label.end() : end].strip(_SEPARATORS)
        name = _LABEL_FIELD.get(label.group(1))
        if iso_date(value) is not None:
            date = date or iso_date(value)
            value = _strip_date_parts(value)
        if name and value and name not in fields:
            fields[name] = value
    if date is None and "source" not in fields:
        return None
    return Dateline(date=date, source=fields.get("source"), author=fields.get("author"))


def _strip_date_parts(text: str) -> str:
    """What is left of `text` without dates, times, weekdays and separators."""
    for pattern in (_DATE, _COMPACT_DATE, _TIME, _WEEKDAY):
        text = pattern.sub(" ", text)
    return text.strip(_SEPARATORS + "()（）[]【】")


def byline_names(text: str) -> str | None:
    """The names in a byline: "本报讯（记者 张三 通讯员 李四）" -> "张三、李四"."""
    names = [name for name in _NAME_SEPARATORS.split(_ROLES.sub(" ", text)) if has_word_char(name)]
    return "、".join(dict.fromkeys(names)) or None


def split_byline_prefix(paragraph: str) -> tuple[str | None, str | None, str]:
    """(names, agency, rest) of a paragraph opening with "本报讯（记者 张三）" or
    "新华社北京5月9日电（记者 王五）"; (None, None, paragraph) when it does not."""
    match = _BYLINE_PREFIX.match(paragraph)
    if match is None or not has_word_char(paragraph[match.end() :]):
        return None, None, paragraph
    return byline_names(match.group("names")), match.group("agency"), paragraph[match.end() :]


def opens_report(text: str) -> bool:
    """True for a line that starts a separately written report: a byline ("本报记者 齐旭"),
    a paragraph opening with one ("本报讯（记者 张三）…") or a date/source line."""
    text = collapse_whitespace(text)
    return (
        is_byline(text)
        or split_byline_prefix(text)[0] is not None
        or read_dateline(text) is not None
    )
