"""What a comment complains about: a problem type, by transparent rules.

Each :class:`ProblemRule` is a named regular expression for one
:class:`ProblemType`, in Chinese or English. A comment gets the type whose
rules match most often (each rule counts once); ties go to the type whose
CSAT sub-score is lowest, then to the first type in :data:`PRIORITY`. When no
rule matches, a low sub-score alone decides (CSAT speed <= 2 -> slow response,
attitude <= 2 -> attitude, effectiveness or professionalism <= 2 -> unsuitable
solution); otherwise the answer is ``other``.

Rules match complaints, not topics: "态度很好" or "very fast" match nothing. A
rule marked ``negatable`` is ignored when a negation stands just before the
match ("不慢", "not slow", "wasn't rude").

The rules are the first classifier; a trained model can replace them later by
implementing :class:`ProblemClassifier` (``classify(text, scores=...)``) and
being called where :func:`classify_problem` is called now.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from analysis.text.cleaning import clean_text


class ProblemType(enum.StrEnum):
    SLOW_RESPONSE = "slow_response"
    UNSUITABLE_SOLUTION = "unsuitable_solution"
    ATTITUDE = "attitude"
    PROCESS_POLICY = "process_policy"
    PRODUCT_DEFECT = "product_defect"
    OTHER = "other"


#: Tie-break order when two types match equally often: a broken product or an
#: unsolved case is the cause the customer came with; the way they were
#: treated, the wait and the rules come after.
PRIORITY: tuple[ProblemType, ...] = (
    ProblemType.PRODUCT_DEFECT,
    ProblemType.UNSUITABLE_SOLUTION,
    ProblemType.ATTITUDE,
    ProblemType.SLOW_RESPONSE,
    ProblemType.PROCESS_POLICY,
)

#: Which CSAT sub-score (the ``scores`` mapping's keys, as in SurveyResponse)
#: speaks for which type.
SUB_SCORES: dict[str, ProblemType] = {
    "csat_speed": ProblemType.SLOW_RESPONSE,
    "csat_attitude": ProblemType.ATTITUDE,
    "csat_effectiveness": ProblemType.UNSUITABLE_SOLUTION,
    "csat_professionalism": ProblemType.UNSUITABLE_SOLUTION,
}
#: The problem type of a comment most negative about a survey dimension
#: (:mod:`analysis.sentiment.aspects`); professionalism is the ability to solve.
ASPECT_PROBLEMS: dict[str, ProblemType] = {
    "speed": ProblemType.SLOW_RESPONSE,
    "attitude": ProblemType.ATTITUDE,
    "effectiveness": ProblemType.UNSUITABLE_SOLUTION,
    "professionalism": ProblemType.UNSUITABLE_SOLUTION,
}
#: A sub-score at or below this (on the 1-5 CSAT scale) counts as a complaint.
LOW_SUB_SCORE = 2

# A negation right before the cue: Chinese 不/没(有)/无, optionally with 用/需/任何 ...
# ("不用排队", "没有任何故障"); English not/n't/never/no/without, optionally one word
# between ("not very slow").
_NEGATION_BEFORE = re.compile(
    r"(?:(?:不|没|没有|并不|毫不|无|一点也不|一点都不)(?:用|需|需要|必|任何|什么|再|怎么)?"
    r"|(?:\bnot|n't|\bnever|\bno|\bhardly|\bwithout)\s+(?:\w+\s+)?)$",
    re.IGNORECASE,
)
# How far before a match a negation is looked for.
_NEGATION_WINDOW = 12


@dataclass(frozen=True)
class ProblemRule:
    """One named pattern that marks a comment as a problem type."""

    name: str
    problem: ProblemType
    pattern: re.Pattern[str]
    #: Ignore a match preceded by a negation ("不慢", "not slow").
    negatable: bool = False

    def matches(self, text: str) -> bool:
        for match in self.pattern.finditer(text):
            if not self.negatable:
                return True
            before = text[max(0, match.start() - _NEGATION_WINDOW) : match.start()]
            if not _NEGATION_BEFORE.search(before):
                return True
        return False


def _rule(
    name: str, problem: ProblemType, pattern: str, *, negatable: bool = False
) -> ProblemRule:
    return ProblemRule(name, problem, re.compile(pattern, re.IGNORECASE), negatable)


_P = ProblemType
RULES: tuple[ProblemRule, ...] = (
    # Slow response: waiting, queues, no answer.
    _rule(
        "zh-slow",
        _P.SLOW_RESPONSE,
        r"慢|太久|很久|好久|半天|迟迟|拖了|拖延|(下周|下个月|下星期|几天后|明天)才"
        r"|(两|三|四|五|六|七|几|好几|十几|\d+) ?(天|周|个月|个星期|个?小时)(了|才|都|还)",
        negatable=True,
    ),
    _rule(
        "zh-wait",
        _P.SLOW_RESPONSE,
        r"等了|等待|等很久|等半天|一直等|等到(现在|今天)|排队|排了",
        negatable=True,
    ),
    _rule(
        "zh-no-reply",
        _P.SLOW_RESPONSE,
        r"没人(回复|回|理|接|联系|处理)|无人(回复|应答|接听|处理)|不回(复|消息)|石沉大海|打不通"
        r"|联系不上|(一直|始终|还|都|也)没(有)?人?(回|回复|回电|联系|消息|动静|处理)"
        r"|没(有)?(等到|收到)(回复|答复|回电|电话|消息)",
    ),
    _rule(
        "en-slow",
        _P.SLOW_RESPONSE,
        r"\b(slow(ly)?|delay(s|ed)?|late|forever|ages)\b|took (too long|days|weeks|hours)",
        negatable=True,
    ),
    _rule(
        "en-wait", _P.SLOW_RESPONSE, r"\b(wait(s|ed|ing)?|queue[ds]?|on hold)\b", negatable=True
    ),
    _rule(
        "en-no-reply",
        _P.SLOW_RESPONSE,
        r"\bno ?(one|body) (replied|responded|answered|called|got back)"
        r"|\bnever (heard back|got back|replied|responded|answered|called)"
        r"|\bno (reply|response|answer|callback)\b",
    ),
    # Unsuitable solution: not solved, wrong answer, has to come back.
    _rule(
        "zh-not-solved",
        _P.UNSUITABLE_SOLUTION,
        r"没(有)?(彻底|真正|完全)?(解决|处理好|修好|搞定)|未(解决|处理)|解决不了|无法解决"
        r"|没帮(上|到)|还是不(能|行)|问题(依旧|还在|仍然|又)|还是一样|治标不治本|答非所问",
    ),
    _rule(
        "zh-useless",
        _P.UNSUITABLE_SOLUTION,
        r"不能用|没用|没有用|不管用|无效|不(够|太)?专业|不适用|不合适|不适合|反复(出现|发生)"
        r"|重复(出现|提交)|又(出现|坏)",
    ),
    _rule(
        "en-not-solved",
        _P.UNSUITABLE_SOLUTION,
        r"\b(not|never|wasn't|isn't|hasn't been|wasn't) (resolved|solved|fixed|answered)"
        r"|\bunresolved\b|\b(didn't|did not|doesn't|does not|don't) (work|help|fix|solve|resolve)"
        r"|\bstill (broken|not working|happening|the same)"
        r"|\bwithout (fixing|solving|resolving|helping|answering|checking)"
        r"|\bclosed (my|the|our) (ticket|case|request) (without|before)",
    ),
    _rule(
        "en-useless",
        _P.UNSUITABLE_SOLUTION,
        r"\b(useless|unhelpful|not helpful|wrong (answer|solution|information)"
        r"|same (problem|issue)|incompetent|clueless)\b",
    ),
    _rule(
        "en-again",
        _P.UNSUITABLE_SOLUTION,
        r"\b(again and again|yet again|once again)\b"
        r"|\b(contact|call|email|writ|ask|explain|report|open|rais|repeat|happen|fail|br[oe]k)\w*"
        r" (\w+ ){0,2}again\b"
        r"|\b(explain|repeat|describ|tell|told)\w* (\w+ ){0,3}"
        r"(twice|(three|four|five|several|multiple|many) times|over and over)\b"
        r"|\b(issue|problem|error|fault) (came|comes|keeps coming) back\b",
    ),
    # Attitude: how the customer was treated.
    _rule(
        "zh-attitude",
        _P.ATTITUDE,
        r"态度(很|太|非常|特别|极其|也|实在)?(差|恶劣|不好|冷淡|生硬|傲慢|不行|有问题|恶心)"
        r"|(语气|说话)(很|太|比较)?(差|冲|生硬|不好|难听)|一点(都|也)不客气",
    ),
    _rule(
        "zh-rude",
        _P.ATTITUDE,
        r"不耐烦|敷衍|冷漠|傲慢|爱答不理|爱理不理|没礼貌|不礼貌|不尊重|嘲讽|骂人|凶|甩脸|怠慢|推卸"
        r"|不负责|挂(了)?(我|我的)?电话|挂断",
        negatable=True,
    ),
    _rule(
        "en-rude",
        _P.ATTITUDE,
        r"\b(rude|impolite|unfriendly|arrogant|condescending|dismissive|disrespectful|patronizing"
        r"|sarcastic|unprofessional|yelled|hung up)\b",
        negatable=True,
    ),
    _rule(
        "en-attitude",
        _P.ATTITUDE,
        r"\b(bad|poor|terrible|awful|horrible|lousy|negative) attitude\b"
        r"|\battitude (was|is) (bad|poor|terrible|awful|horrible)\b|\bdidn't care\b",
    ),
    # Process / policy: rules, hand-offs, paperwork. "流程" or "process" alone is
    # a topic, not a complaint ("流程很清晰"), so it needs a verdict next to it.
    _rule(
        "zh-process",
        _P.PROCESS_POLICY,
        r"(流程|手续|审批|审核|步骤)[^，。！？,.!?]{0,4}"
        r"(复杂|繁琐|麻烦|太长|太多|慢|太久|不合理|不清楚|混乱|乱|僵化|死板)"
        r"|规定|政策|制度|条款|规则|繁琐|(太|很|好|真)麻烦|转来转去|踢皮球|推来推去"
        r"|转了?好?几(次|个|遍)|不让|不允许|不给(退|换|办)|(必须|还要|需要|要求)(提供|上传|填写|找)",
    ),
    _rule(
        "en-process",
        _P.PROCESS_POLICY,
        r"\b(polic(y|ies)|bureaucra\w*|red tape|paperwork|rules?|not allowed|transferred"
        r"|passed around|bounced (around|between))\b"
        r"|\b(complicated|confusing|long|lengthy|slow|tedious|cumbersome|ridiculous|painful"
        r"|frustrating|bureaucratic|annoying) (process|procedure)"
        r"|\b(process|procedure)s? (\w+ ){0,3}(complicated|confusing|too long|lengthy|tedious"
        r"|cumbersome|ridiculous|painful|frustrating|a nightmare|a mess)",
    ),
    # Product defect: the product itself fails.
    _rule(
        "zh-defect",
        _P.PRODUCT_DEFECT,
        r"故障|崩溃|闪退|报错|错误|卡顿|卡死|死机|打不开|登录不了|无法登录|无法使用|坏了|损坏|缺陷"
        r"|异常|白屏|黑屏|失灵|漏洞|丢失|出错|失效|用不了(?!多)|(无法|不能)正常|不正常"
        r"|质量(问题|差|不好)",
        negatable=True,
    ),
    _rule(
        "en-defect",
        _P.PRODUCT_DEFECT,
        r"\b(bugs?|buggy|defects?|defective|crash(es|ed|ing)?|broken|errors?|glitch(es|y)?|faulty"
        r"|malfunction\w*|freez(es|ing)|froze|outage|data loss|lost (my|all|the) data)\b"
        r"|won't (start|load|open)|doesn't (load|open|start)",
        negatable=True,
    ),
)


class ProblemClassifier(Protocol):
    """Anything that names the problem type of a comment.

    ``scores`` maps CSAT sub-score names (``csat_speed``, ``csat_attitude``,
    ``csat_effectiveness``, ``csat_professionalism``) to the 1-5 answer or
    None. A trained model implements this to replace the rules.
    """

    def classify(
        self, text: str | None, *, scores: Mapping[str, int | None] | None = None
    ) -> ProblemType: ...


class RuleBasedClassifier:
    """The :class:`ProblemClassifier` made of :data:`RULES` (see the module doc)."""

    def __init__(self, rules: Sequence[ProblemRule] = RULES) -> None:
        self.rules = tuple(rules)

    def explain(self, text: str | None) -> dict[ProblemType, list[str]]:
        """Return, per problem type, the names of the rules that match ``text``."""
        text = clean_text(text)
        matched: dict[ProblemType, list[str]] = {}
        if text:
            for rule in self.rules:
                if rule.matches(text):
                    matched.setdefault(rule.problem, []).append(rule.name)
        return matched

    def classify(
        self, text: str | None, *, scores: Mapping[str, int | None] | None = None
    ) -> ProblemType:
        """Return the problem type of ``text``; ``OTHER`` when nothing points to one."""
        lowest = _lowest_sub_score(scores or {})
        matched = self.explain(text)
        if not matched:
            low = [p for p in PRIORITY if lowest.get(p, LOW_SUB_SCORE + 1) <= LOW_SUB_SCORE]
            return min(low, key=lambda p: lowest[p]) if low else ProblemType.OTHER
        return min(
            matched,
            key=lambda p: (-len(matched[p]), lowest.get(p, 99), PRIORITY.index(p)),
        )


def _lowest_sub_score(scores: Mapping[str, int | None]) -> dict[ProblemType, int]:
    lowest: dict[ProblemType, int] = {}
    for name, problem in SUB_SCORES.items():
        value = scores.get(name)
        if value is not None:
            lowest[problem] = min(value, lowest.get(problem, value))
    return lowest


_default = RuleBasedClassifier()


def classify_problem(
    text: str | None, *, scores: Mapping[str, int | None] | None = None
) -> ProblemType:
    """Return the :class:`ProblemType` a comment complains about, by the rules.

    ``scores`` optionally holds the response's CSAT sub-scores (see
    :class:`ProblemClassifier`); they break ties and stand in when the text
    matches no rule. Empty, emoji-only or ``None`` text without low sub-scores
    gives ``OTHER``. Never raises for any string.
    """
    return _default.classify(text, scores=scores)
