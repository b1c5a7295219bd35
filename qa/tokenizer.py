"""Chinese keyword tokens for the keyword index. The only module that imports jieba.

Text is folded first (qa.normalize), so 臺灣 and 台湾 give the same tokens.
Latin words and numbers (JD.com, 1.76, 5G, 18.8%) are kept whole; Chinese runs go
through jieba's search mode, which adds the short words inside long ones
(互联网 -> 互联, 联网, 互联网) so that a question's wording need not match exactly.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from functools import lru_cache

import jieba

from qa.normalize import fold

logger = logging.getLogger(__name__)
jieba.setLogLevel(logging.WARNING)

_LATIN_OR_NUMBER = re.compile(r"[a-z0-9](?:[a-z0-9.%+\-_']*[a-z0-9%])?")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_SPLIT = re.compile(f"({_LATIN_OR_NUMBER.pattern}|{_CJK_RUN.pattern})")

# Words that carry no evidence of where an answer is: particles, pronouns and
# the question words themselves.
STOPWORDS = frozenset(
    """的 了 是 在 和 与 及 或 也 都 就 而 被 把 对 从 为 以 之 其 这 那 该 有 个 着 过 等
    吗 呢 吧 啊 呀 么 什么 多少 哪些 哪个 哪里 哪儿 哪 怎么 怎样 怎么样 如何 为什么 为何 谁 何
    几 是否 请问 请 一个 哪一 哪年 何时 多久 多大 第几
    the a an of in on at to for is are was were be been what which who whom whose how
    many much does did do and or by with from that this these those it its as when where why
    has have had can could will would into about""".split()
)


# A server tokenises the same passages' sentences for question after question (the
# answering sentence, keyword coverage): their tokens and tags are kept, a bounded
# number of short texts only (indexing passes whole documents through here too).
CACHED_TEXTS = 8192
CACHED_MAX_CHARS = 1000

# Dictionaries loaded before a fork (`share_dictionary`, called by `qa serve --workers`'
# supervisor), by user words: a Tokenizer with the same user words uses these instead of
# loading its own, so the forked workers share their pages.
_SHARED: dict[tuple[str, ...], tuple[jieba.Tokenizer, object]] = {}


class Tokenizer:
    """jieba search-mode tokens of folded text, with a user dictionary of domain terms."""

    def __init__(self, user_words: Iterable[str] = ()):
        self.user_words = tuple(sorted({fold(w.strip()) for w in user_words if w.strip()}))
        self._jieba: jieba.Tokenizer | None = None
        self._tagger = None  # a jieba.posseg.POSTokenizer, made on the first tagging
        self._lock = threading.Lock()
        self._cached_tokens = lru_cache(maxsize=CACHED_TEXTS)(self._tokens_of_folded)
        self._cached_tags = lru_cache(maxsize=CACHED_TEXTS)(self._tags_of_folded)

    def load(self) -> None:
        """Load jieba's dictionary now rather than on the first question."""
        self._segmenter()

    def _segmenter(self) -> jieba.Tokenizer:
        # Built on first use: loading jieba's dictionary takes about a second.
        with self._lock:
            if self._jieba is None and self.user_words in _SHARED:
                self._jieba, self._tagger = _SHARED[self.user_words]
            if self._jieba is None:
                segmenter = jieba.Tokenizer()
                segmenter.initialize()
                for word in self.user_words:
                    segmenter.add_word(word, freq=None)
                    # Without this a user word like 产融协同 would still be cut
                    # by the dictionary's stronger entries.
                    segmenter.suggest_freq(word, tune=True)
                self._jieba = segmenter
            return self._jieba

    def tagged_words(self, folded: str) -> list[tuple[str, str]]:
        """(word, part-of-speech tag) pairs of already folded text, in jieba's tag set
        (nr person, ns place, nt organisation, m number, t time, ...)."""
        if len(folded) > CACHED_MAX_CHARS:
            return list(self._tags_of_folded(folded))
        return list(self._cached_tags(folded))

    def _tags_of_folded(self, folded: str) -> tuple[tuple[str, str], ...]:
        segmenter = self._segmenter()
        with self._lock:
            if self._tagger is None:
                self._tagger = _tagger_for(segmenter)
        return tuple((pair.word, pair.flag) for pair in self._tagger.lcut(folded, HMM=True))

    def tokens(self, text: str, already_folded: bool = False) -> list[str]:
        """Keyword tokens of `text`, in order, stop words and punctuation dropped.

        `already_folded=True` skips folding (qa.normalize.fold) text that has been.
        """
        folded = text if already_folded else fold(text)
        if len(folded) > CACHED_MAX_CHARS:
            return list(self._tokens_of_folded(folded))
        return list(self._cached_tokens(folded))

    def _tokens_of_folded(self, folded: str) -> tuple[str, ...]:
        out: list[str] = []
        for piece in _SPLIT.findall(folded):
            if _CJK_RUN.fullmatch(piece):
                out.extend(self._segmenter().lcut_for_search(piece, HMM=True))
            else:
                out.append(piece)
        return tuple(t for t in out if t.strip() and t not in STOPWORDS)


def share_dictionary(user_words: Iterable[str] = ()) -> None:
    """Load jieba's dictionary with these user words, and its part-of-speech tagger, for
    every Tokenizer made after it with the same user words (in this process and in the
    processes it forks, which then share the pages until they write to them)."""
    tokenizer = Tokenizer(user_words)
    if tokenizer.user_words in _SHARED:
        return
    tokenizer.load()
    tokenizer.tagged_words("")  # makes the tagger
    _SHARED[tokenizer.user_words] = (tokenizer._jieba, tokenizer._tagger)


def _tagger_for(segmenter: jieba.Tokenizer):
    """A part-of-speech tagger (jieba.posseg.POSTokenizer) over `segmenter`.

    Imported here: importing jieba.posseg reads the whole dictionary for its module-level
    tagger (about half a second), which only questions about people and places need.
    Over the same dictionary file, that tagger's word -> tag table is shared rather than
    read a second time.
    """
    import jieba.posseg

    shared = jieba.posseg.dt
    if segmenter.dictionary != shared.tokenizer.dictionary:
        return jieba.posseg.POSTokenizer(segmenter)

    class SharedTags(jieba.posseg.POSTokenizer):
        def load_word_tag(self, f) -> None:
            f.close()
            self.word_tag_tab = dict(shared.word_tag_tab)

    return SharedTags(segmenter)
