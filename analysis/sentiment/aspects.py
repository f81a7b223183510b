"""Sentiment per survey dimension: what the comment says about each thing the survey rates.

The survey asks for CSAT on response speed, professionalism (ability to
solve), attitude and the effectiveness of the solution. A comment often
speaks to several at once and not alike: "客服态度很好，但是等了三天才回复"
praises the attitude and complains about the wait. So the comment is cut into
clauses (at punctuation and at contrast words: 但是, 不过, but, however ...),
each clause is assigned to the aspects its words name (a bilingual cue list
below; a clause naming none is "other"), each clause is scored by the
sentiment engine, and an aspect's score is the mean of its clauses'.

Stored per response in ``response_aspect`` (:mod:`analysis.text.models`) by the
analysis pipeline; the dashboard compares it with the CSAT the same customers
gave that dimension, and the case's problem type follows the most negative
aspect when the words point to one.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .engine import SentimentResult


class Aspect(enum.StrEnum):
    SPEED = "speed"
    PROFESSIONALISM = "professionalism"
    ATTITUDE = "attitude"
    EFFECTIVENESS = "effectiveness"
    OTHER = "other"


#: The CSAT column each aspect stands beside on the dashboard.
CSAT_COLUMN: dict[Aspect, str] = {
    Aspect.SPEED: "csat_speed",
    Aspect.PROFESSIONALISM: "csat_professionalism",
    Aspect.ATTITUDE: "csat_attitude",
    Aspect.EFFECTIVENESS: "csat_effectiveness",
}

#: Words that name an aspect (Chinese as substrings, English as word starts).
CUES: dict[Aspect, tuple[str, ...]] = {
    Aspect.SPEED: (
        "响应",
        "回复",
        "回应",
        "答复",
        "等了",
        "等待",
        "等太久",
        "等很久",
        "排队",
        "及时",
        "速度",
        "效率",
        "拖",
        "半天",
        "好几天",
        "三天",
        "几天",
        "几个小时",
        "秒回",
        "很快",
        "太慢",
        "慢",
        "快速",
        "迅速",
        "马上",
        "立刻",
        "当天",
        "没人回",
        "回电",
        "没人接",
        "催",
        "一直等",
        "wait",
        "slow",
        "fast",
        "quick",
        "prompt",
        "respon",
        "repl",
        "called back",
        "call back",
        "callback",
        "called me",
        "call me",
        "get back",
        "got back",
        "hours",
        "days",
        "week",
        "delay",
        "took forever",
        "on hold",
        "asap",
    ),
    Aspect.PROFESSIONALISM: (
        "专业",
        "技术",
        "业务",
        "不懂",
        "懂行",
        "熟悉",
        "经验",
        "水平",
        "能力",
        "外行",
        "一问三不知",
        "转了好几个",
        "转来转去",
        "转接",
        "踢皮球",
        "推来推去",
        "解释清楚",
        "讲得清楚",
        "说不清",
        "professional",
        "knowledge",
        "expert",
        "competent",
        "incompetent",
        "clueless",
        "transferred",
        "passed around",
        "understood",
        "explained",
        "skilled",
    ),
    Aspect.ATTITUDE: (
        "态度",
        "耐心",
        "礼貌",
        "热情",
        "客气",
        "敷衍",
        "冷淡",
        "不耐烦",
        "服务好",
        "友好",
        "亲切",
        "傲慢",
        "凶",
        "骂",
        "贴心",
        "细心",
        "周到",
        "认真",
        "负责",
        "attitude",
        "patient",
        "polite",
        "rude",
        "friendly",
        "kind",
        "helpful",
        "courteous",
        "dismissive",
        "arrogant",
        "caring",
        "attentive",
    ),
    Aspect.EFFECTIVENESS: (
        "解决",
        "搞定",
        "修好",
        "好了",
        "还是不行",
        "没用",
        "有用",
        "有效",
        "无效",
        "一次就",
        "问题还在",
        "还没好",
        "彻底",
        "方案",
        "办法",
        "恢复",
        "复发",
        "又出现",
        "fix",
        "solv",
        "resolv",
        "work",
        "still not",
        "still broken",
        "useless",
        "sorted",
        "solution",
        "issue",
        "problem",
        "again",
    ),
}

_CLAUSE_BREAK = re.compile(
    r"[。！？!?；;，,、\n]+|\.(?:\s+|$)|(?:但是|但|不过|可是|然而|只是|就是|却)"
    r"|\b(?:but|however|though|although)\b",
    re.IGNORECASE,
)
_LATIN = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class AspectScore:
    """One aspect of one comment: the mean score of its clauses, their label, how many."""

    aspect: Aspect
    score: float
    label: str
    clauses: int


def split_clauses(text: str | None) -> list[str]:
    """``text`` cut at punctuation and contrast words; blank pieces dropped."""
    if not text:
        return []
    return [piece.strip() for piece in _CLAUSE_BREAK.split(text) if piece and piece.strip()]


def clause_aspects(clause: str) -> list[Aspect]:
    """The aspects a clause names (``[OTHER]`` when it names none)."""
    lowered = clause.lower()
    found = []
    for aspect, cues in CUES.items():
        for cue in cues:
            if _LATIN.search(cue):
                if re.search(rf"\b{re.escape(cue)}", lowered):
                    break
            elif cue in clause:
                break
        else:
            continue
        found.append(aspect)
    return found or [Aspect.OTHER]


def aspect_scores(
    text: str | None,
    score: Callable[[str], SentimentResult],
    neutral_band: tuple[float, float],
) -> list[AspectScore]:
    """Per aspect the comment speaks to, its sentiment (empty for an empty comment).

    ``score`` is the sentiment engine's scorer; a clause it cannot score (label
    ``none``) is left out. A clause the engine finds ambiguous counts as it
    scored. Never raises for any string.
    """
    collected: dict[Aspect, list[float]] = {}
    for clause in split_clauses(text):
        result = score(clause)
        if result.score is None:
            continue
        for aspect in clause_aspects(clause):
            collected.setdefault(aspect, []).append(result.score)
    low, high = neutral_band
    scores = []
    for aspect, values in collected.items():
        mean = sum(values) / len(values)
        label = "negative" if mean < low else "positive" if mean > high else "neutral"
        scores.append(AspectScore(aspect, round(mean, 4), label, len(values)))
    return sorted(scores, key=lambda s: list(Aspect).index(s.aspect))


def most_negative(scores: list[AspectScore]) -> Aspect | None:
    """The survey dimension the comment is most negative about (None: none negative)."""
    negative = [s for s in scores if s.label == "negative" and s.aspect is not Aspect.OTHER]
    return min(negative, key=lambda s: s.score).aspect if negative else None


def aspect_rows(response_id: int, scores: list[AspectScore]) -> list[dict[str, Any]]:
    """The ``response_aspect`` rows of one response."""
    return [
        {
            "response_id": response_id,
            "aspect": s.aspect.value,
            "score": s.score,
            "label": s.label,
            "clauses": s.clauses,
        }
        for s in scores
    ]
