"""Demo comments that read like real support feedback and fit the ticket they answer.

A comment is built from what happened to the ticket: a first response past
its SLA gives a remark on the wait, several contacts one on being passed
around or explaining again, a reopened ticket one on the problem coming back;
a ticket that went well gets praise of the speed, the people and the fix. One
to three such clauses are joined the way customers join them (，/而且/但是,
"and"/"but"), from hand-written fragments in Chinese and English, so a
90-day demo holds several hundred distinct comments whose sentiment fits
their scores. A few customers rate well and complain anyway (or the other way
round): the genuine contradictions the dashboard flags.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Fragments per (language, aspect, tone).
FRAGMENTS: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "zh_Hans": {
        "speed": {
            "good": (
                "响应很快",
                "几分钟就有人回复了",
                "当天就处理好了",
                "回复非常及时",
                "没怎么等就有人接",
                "处理速度比预期快",
                "秒回，效率很高",
                "第二天一早就联系我了",
            ),
            "bad": (
                "等了很久才有人回复",
                "电话一直排队",
                "提交之后两天都没人理",
                "催了好几次才有回应",
                "晚上提的单第二天下午才回",
                "回复太慢了",
                "说好回电话，结果没人回电话",
                "等了三天才有人联系",
            ),
        },
        "professionalism": {
            "good": (
                "工程师很专业",
                "一听就知道问题在哪",
                "解释得很清楚",
                "技术水平很高",
                "对产品非常熟悉",
                "讲得明明白白",
            ),
            "bad": (
                "客服不够专业，答非所问",
                "转了好几个部门",
                "同一个问题解释了三遍",
                "每次换一个人都要从头说起",
                "感觉对方也不太懂",
                "被转来转去",
            ),
        },
        "attitude": {
            "good": ("态度很好", "很耐心", "非常热情", "说话很客气", "服务很贴心", "一直很有礼貌"),
            "bad": ("态度敷衍", "语气很不耐烦", "感觉在应付我", "对方很冷淡", "说话很冲"),
        },
        "effectiveness": {
            "good": (
                "一次就解决了，省心",
                "问题彻底解决了",
                "现在一切正常",
                "按照方法操作马上就好了",
                "问题解决了，非常感谢",
                "终于能正常使用了",
            ),
            "bad": (
                "问题反复出现，没有彻底解决",
                "工单关了问题还在",
                "给的方案根本不管用",
                "还是不行",
                "过两天又坏了",
                "说修好了其实没修好",
            ),
        },
    },
    "en": {
        "speed": {
            "good": (
                "quick reply",
                "someone answered within minutes",
                "fixed the same day",
                "fast response",
                "no waiting at all",
            ),
            "bad": (
                "I waited far too long for a reply",
                "nobody called me back",
                "I was on hold for ages",
                "two days without any answer",
                "I had to chase them twice",
            ),
        },
        "professionalism": {
            "good": (
                "the engineer really knew the product",
                "clear explanation",
                "very knowledgeable staff",
                "they understood the issue right away",
            ),
            "bad": (
                "I was transferred between departments",
                "I had to explain the problem three times",
                "the agent did not understand the issue",
                "every new person started from scratch",
            ),
        },
        "attitude": {
            "good": (
                "friendly and patient",
                "very polite",
                "the agent was kind and helpful",
                "they really cared",
            ),
            "bad": ("the agent was rude", "felt dismissive", "nobody seemed to care"),
        },
        "effectiveness": {
            "good": (
                "solved on the first call",
                "everything works now",
                "the fix worked",
                "problem solved, thank you",
            ),
            "bad": (
                "still not fixed",
                "the issue came back a day later",
                "the fix did not work",
                "they closed the ticket but the problem is still there",
            ),
        },
    },
}

#: How customers open and close a comment.
CLOSINGS = {
    "zh_Hans": {
        "good": ("非常满意", "点赞", "谢谢", "给个好评", ""),
        "bad": ("体验很差", "很失望", "希望改进", ""),
    },
    "en": {
        "good": ("thanks!", "great service", "very happy", ""),
        "bad": ("very disappointing", "please improve", ""),
    },
}

#: The share of answers whose comment disagrees with the score (genuine contradictions).
CONTRADICTION_SHARE = 0.03


@dataclass(frozen=True)
class TicketStory:
    """What happened to a ticket, as far as its customer would write about it."""

    waited_too_long: bool
    contacts: int
    reopened: bool


def demo_comment(story: TicketStory, overall: int, language: str, rng: random.Random) -> str:
    """A comment for a customer who rated ``overall`` (1-5) after ``story``."""
    language = language if language in FRAGMENTS else "en"
    bank = FRAGMENTS[language]
    happy = overall >= 4
    if rng.random() < CONTRADICTION_SHARE:
        happy = not happy
    if happy:
        aspects = rng.sample(list(bank), k=rng.choice((1, 2, 2, 3)))
        clauses = [rng.choice(bank[a]["good"]) for a in aspects]
        if story.waited_too_long and rng.random() < 0.3:
            clauses.append(_but(language) + rng.choice(bank["speed"]["bad"]))
        tone = "good"
    else:
        causes = []
        if story.waited_too_long:
            causes.append("speed")
        if story.contacts > 1:
            causes.append("professionalism")
        if story.reopened:
            causes.append("effectiveness")
        if not causes:
            causes = [rng.choice(list(bank))]
        clauses = [rng.choice(bank[a]["bad"]) for a in causes[:2]]
        if rng.random() < 0.25:  # "friendly, but ...": praise first, then the complaint
            clauses[0] = rng.choice(bank["attitude"]["good"]) + _but_prefix(language) + clauses[0]
        tone = "bad"
    closing = rng.choice(CLOSINGS[language][tone])
    return _join(language, [*clauses, closing] if closing else clauses)


def _but(language: str) -> str:
    return "不过" if language == "zh_Hans" else "but "


def _but_prefix(language: str) -> str:
    return "，但是" if language == "zh_Hans" else ", but "


def _join(language: str, clauses: list[str]) -> str:
    if language == "zh_Hans":
        text = "，".join(clauses).replace("，，", "，")
        return text if text.endswith(("。", "！")) else text + "。"
    text = ", ".join(clauses).replace(", ,", ",").replace(",,", ",")
    return text[:1].upper() + text[1:] + ("" if text.endswith(("!", ".")) else ".")
