"""The default survey: four CSAT dimensions, overall CSAT, NPS, CES and a comment."""

from __future__ import annotations

from typing import Any

from .models import QuestionKind

DEFAULT_TEMPLATE_NAME = "Post-ticket survey"

DEFAULT_INTRO = {
    "en": "Your support request {ticket} was closed. Two minutes of your time help us improve.",
    "zh_Hans": "您的服务请求 {ticket} 已处理完毕。花两分钟告诉我们您的感受，帮助我们改进。",
}

#: (key, kind, required, English, Chinese). The first question is the one-click
#: question of the invitation e-mail.
DEFAULT_QUESTIONS: list[tuple[str, str, bool, str, str]] = [
    ("csat_overall", "csat", True,
     "Overall, how satisfied are you with how your request was handled?",
     "总体而言，您对本次服务的满意程度如何？"),
    ("csat_speed", "csat", False,
     "How satisfied are you with the speed of our response?",
     "您对我们的响应速度是否满意？"),
    ("csat_professionalism", "csat", False,
     "How satisfied are you with our professionalism and ability to solve the problem?",
     "您对我们的专业水平和解决问题的能力是否满意？"),
    ("csat_attitude", "csat", False,
     "How satisfied are you with our attitude?",
     "您对我们的服务态度是否满意？"),
    ("csat_effectiveness", "csat", False,
     "How satisfied are you with the effectiveness of the solution?",
     "您对解决方案的有效性是否满意？"),
    ("nps", "nps", False,
     "How likely are you to recommend us to a friend or colleague?",
     "您有多大可能向朋友或同事推荐我们？"),
    ("ces", "ces", False,
     "How easy was it to get your issue handled?",
     "这次解决问题的过程对您来说有多容易？"),
    ("comment", "text", False,
     "What could we improve?",
     "您认为我们还有哪些可以改进的地方？"),
]  # fmt: skip


def default_question_rows() -> list[dict[str, Any]]:
    """The default questions as ``Question`` keyword arguments, positions from 1."""
    return [
        {"position": n, "key": key, "kind": QuestionKind(kind), "required": required,
         "text": {"en": en, "zh_Hans": zh}}
        for n, (key, kind, required, en, zh) in enumerate(DEFAULT_QUESTIONS, start=1)
    ]  # fmt: skip
