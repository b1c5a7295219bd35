"""What kind of answer a Chinese question asks for, and whether a sentence holds one.

什么时候/哪一年 ask for a time, 多少/几 for a number, 谁 for a person or an
organisation, 哪里 for a place. A sentence "holds one" when it mentions such a
thing that the question does not already mention: for 2021年营业收入是多少？ the
2021 of the question is no answer, the 1600亿元 of the sentence is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from qa.normalize import fold

TIME = "time"
NUMBER = "number"
WHO = "who"
PLACE = "place"

# Checked in this order: 几月 asks for a time before 几 asks for a number.
_KINDS = (
    (TIME, re.compile(
        r"什么时候|什么时间|何时|何年|何日|哪一?年|哪一?天|哪一?日|哪个?月|几月|几号|几日"
        r"|哪个?(?:时候|时期|年代|朝代|世纪|季节)|什么(?:年代|朝代|时期|季节|日子)|多久以前"
        r"|when\b")),
    (NUMBER, re.compile(
        r"多少|几|多大|多长|多高|多重|多远|多久|多宽|多深|多厚|多快|多老|多少钱"
        r"|how (?:many|much|long|old|far|big|high)")),
    (WHO, re.compile(
        r"谁|哪位|何人|什么人|哪个人|哪些人|哪家|哪所|哪支"
        r"|(?:哪个|哪一个|哪些|什么)(?:公司|机构|组织|单位|部门|团队|球队|大学|学校|企业|银行"
        r"|政党|乐队|品牌|媒体|报纸|电视台)"
        r"|\bwho\b|\bwhich (?:company|organi[sz]ation)")),
    (PLACE, re.compile(
        r"哪里|哪儿|何处|何地|什么地方|在哪|哪座|哪国|哪一?个?(?:国家|城市|省|地区|地方|州|县)"
        r"|\bwhere\b")),
)

_CN_DIGITS = "〇零一二三四五六七八九十百千万亿两"
_TIME_MENTION = re.compile(
    r"\d+\s*(?:年|月|日|号|世纪)|[" + _CN_DIGITS + r"]+(?:年|月|日|世纪)"
    r"|[今去明前当同次翌]年|年[初底末中]|月[初底末]|[上中下]旬|\d+年代|[春夏秋冬][季天]"
    r"|[唐宋元明清汉秦隋晋周商][朝代]|\d{1,2}[:：]\d{2}|(?:星期|周)[一二三四五六日天]"
    r"|凌晨|清晨|早上|上午|中午|下午|傍晚|晚上|夜间"
)
_CLASSIFIERS = ("个名位次年月日天种件项座条家所人元吨米倍只台辆架艘颗部本首支场届期层份股"
                "万亿千百公克里岁")
_NUMBER_MENTION = re.compile(
    r"\d+(?:[.,]\d+)*\s*%?|百分之[" + _CN_DIGITS + r"点]+"
    r"|[" + _CN_DIGITS + r"]+[" + _CLASSIFIERS + r"]"
)
# jieba part-of-speech tags: nr person (nrt transliterated, nrfg), nt organisation,
# ns place.
_WHO_TAGS = frozenset({"nr", "nrt", "nrfg", "nt"})
_PLACE_TAGS = frozenset({"ns", "nsf"})
_ORGANISATION = re.compile(
    r"[\u4e00-\u9fff]{2,}(?:公司|集团|大学|学院|银行|协会|委员会|政府|研究所|研究院|中心|组织|联盟"
    r"|俱乐部|球队|乐队|电视台|出版社|报社)"
)


# A question asking what something is, and a sentence that says it (X是指……, X是一种……,
# X意为……, X又称……).
_DEFINITION_QUESTION = re.compile(r"定义|什么是|指什么|含义|意思|是什么东西")
_DEFINITION = re.compile(r"是指|指的是|是一[种个门类项位]|定义为|意指|泛指|意为|又称|亦称|简称")


def asks_definition(folded_question: str) -> bool:
    """Whether a folded question asks what something is (定义, 什么是, 含义)."""
    return bool(_DEFINITION_QUESTION.search(folded_question))


def gives_definition(folded_sentence: str) -> bool:
    """Whether a folded sentence is worded as a definition (是指, 是一种, 意为, 又称)."""
    return bool(_DEFINITION.search(folded_sentence))


def question_kind(question: str) -> str | None:
    """TIME, NUMBER, WHO or PLACE for a question asking for one; None otherwise."""
    folded = fold(question)
    for kind, pattern in _KINDS:
        if pattern.search(folded):
            return kind
    return None


def sentence_has_cue(
    kind: str, sentence: str, tagged_words: Iterable[tuple[str, str]], question: str
) -> bool:
    """Whether a folded sentence mentions a `kind` the folded question does not.

    `tagged_words` are the sentence's (word, part-of-speech) pairs, used for people,
    organisations and places.
    """
    if kind == TIME:
        return _new_mention(_TIME_MENTION, sentence, question)
    if kind == NUMBER:
        return _new_mention(_NUMBER_MENTION, sentence, question)
    tags = _WHO_TAGS if kind == WHO else _PLACE_TAGS
    if any(flag in tags and len(word) > 1 and word not in question
           for word, flag in tagged_words):
        return True
    return kind == WHO and _new_mention(_ORGANISATION, sentence, question)


def mention_spans(kind: str, sentence: str, question: str) -> list[tuple[int, int]]:
    """Where a folded sentence mentions a time (kind TIME) or a number (NUMBER) that the
    folded question does not; [] for the other kinds."""
    pattern = {TIME: _TIME_MENTION, NUMBER: _NUMBER_MENTION}.get(kind)
    if pattern is None:
        return []
    return [match.span() for match in pattern.finditer(sentence)
            if match.group().strip() not in question]


def _new_mention(pattern: re.Pattern[str], sentence: str, question: str) -> bool:
    return any(match.group().strip() not in question for match in pattern.finditer(sentence))
