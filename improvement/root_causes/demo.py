"""The root-cause part of ``closedloop demo``: cases, root causes, 5 Why chains, call-backs.

Runs when the shell's demo data is in (the ``demo_seeded`` signal), so the
shell never imports this package. Safe to run again: root causes are found by
title, only unlinked cases are linked, and a case gets its demo call-back
only if it has none.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from analysis.pipeline import analyse_demo_responses
from survey_app.auth.services import find_user
from survey_app.extensions import db
from survey_app.surveys.models import SurveyResponse
from survey_app.types import utcnow

from .cases import classify_case, log_call_back
from .cases import scan_responses as scan
from .causes import create_root_cause, link_case
from .five_whys import add_why
from .models import (
    COMPLETING_OUTCOMES,
    CallBackOutcome,
    CaseStatus,
    FeedbackCase,
    ProcessStep,
    ResponsibleParty,
    RootCause,
    RootCauseStatus,
)

DEMO_ANALYST = "analyst@example.com"
DEMO_ROOT_CAUSES: tuple[dict[str, Any], ...] = (
    {
        "title": "高峰时段排班不足，排队过长 Peak-hour rosters too thin: long queues",
        "description": "Phone and chat queues pass 3 minutes between 10:00 and 12:00.",
        "problem_type": "slow_response",
        "themes": ["等待", "排队", "回复", "wait", "reply"],
        "status": RootCauseStatus.CONFIRMED,
        "reach": 3,
        "step": ProcessStep.RECEIVING_REQUEST,
        "party": ResponsibleParty.RESOURCES,
        "phrases": ("等了很久", "排队", "太慢", "waited far too long", "on hold"),
        "whys": (
            ("process", "客户高峰期等待超过 3 分钟 Customers wait over 3 minutes at peak hours"),
            (
                "management",
                "排班按日均量而非高峰量 Rosters follow the daily average, not the peak",
            ),
            ("measurement", "没有按小时统计来电量 Contact volume is not measured per hour"),
            (
                "technology",
                "IVR 不能把简单问题转自助 The IVR cannot route simple questions to self-service",
            ),
            ("management", "排班规则多年无人复盘 Nobody owns reviewing the roster rules"),
        ),
    },
    {
        "title": "结案前不验证解决效果 Tickets closed without verifying the fix",
        "description": "Repeat contacts within 7 days show the first fix did not hold.",
        "problem_type": "unsuitable_solution",
        "themes": ["解决", "反复", "方案", "fix", "issue"],
        "status": RootCauseStatus.OPEN,
        "reach": 2,
        "step": ProcessStep.DESIGNING_SOLUTION,
        "party": ResponsibleParty.PROCESS_RULE,
        "phrases": ("反复出现", "问题还在", "又坏了", "not fixed", "came back", "did not work"),
        "whys": (
            ("process", "工单在客户确认前关闭 Tickets close before the customer confirms the fix"),
            ("measurement", "考核只看每日结案量 Agents are measured on tickets closed per day"),
            ("people", "新人不熟悉复杂故障排查 New agents lack training on complex faults"),
            ("management", "重复故障没有二线复核 No second-line review of repeat faults"),
        ),
    },
    {
        "title": "转接丢失上下文，客户需重复描述 Hand-offs lose the case history",
        "description": "Transfers between phone, chat and second line start from zero.",
        "problem_type": "process_policy",
        "themes": ["转", "人工", "麻烦", "explain", "problem"],
        "status": RootCauseStatus.OPEN,
        "reach": 2,
        "step": ProcessStep.VERIFYING_INFORMATION,
        "party": ResponsibleParty.SYSTEM_DESIGN,
        "phrases": ("转了好几个", "转来转去", "从头说起", "transferred", "explain the problem"),
        "whys": (
            ("technology", "电话系统与工单系统未打通 The phone and ticket systems are not linked"),
            ("process", "转接时没有交接摘要 No hand-over summary on transfer"),
            ("management", "系统集成预算两次推迟 The integration budget was postponed twice"),
        ),
    },
    {
        "title": "新产品线知识库缺失 Knowledge base missing for the new product line",
        "description": "Answers on 支付网关 come from memory, not from the knowledge base.",
        "problem_type": "unsuitable_solution",
        "themes": ["专业", "答非所问", "客服"],
        "status": RootCauseStatus.OPEN,
        "reach": 2,
        "step": ProcessStep.DESIGNING_SOLUTION,
        "party": ResponsibleParty.STAFF_EXECUTION,
        "phrases": ("不够专业", "不太懂", "did not understand"),
        "whys": (
            ("people", "客服未接受新产品培训 Agents were not trained on the new product"),
            ("environment", "产品迭代快于文档更新 Releases outpace the documentation"),
            ("process", "知识库更新没有负责人 Nobody owns knowledge-base updates"),
        ),
    },
    {
        "title": "回访没有责任人 Nobody owns customer call-backs",
        "description": "Promised call-backs are not tracked after the ticket closes.",
        "problem_type": "process_policy",
        "themes": ["回访", "call"],
        "status": RootCauseStatus.OPEN,
        "reach": 1,
        "step": ProcessStep.FOLLOW_UP,
        "party": ResponsibleParty.PROCESS_RULE,
        "phrases": ("没人回电话", "没人理", "called me back"),
        "whys": (
            ("management", "回访不在任何岗位职责中 Call-backs are in nobody's job description"),
            ("measurement", "回访率不是 KPI The call-back rate is not a KPI"),
        ),
    },
)
OUTCOMES = (
    CallBackOutcome.REACHED_SATISFIED,
    CallBackOutcome.REACHED_SATISFIED,
    CallBackOutcome.REACHED_UNSATISFIED,
    CallBackOutcome.NO_ANSWER,
    CallBackOutcome.LEFT_MESSAGE,
)


def seed_demo_root_causes(sender: Flask, started_at: datetime | None = None, **_extra: Any) -> str:
    """Open the demo's cases and give them root causes, whys and call-backs; commit.

    Returns the line ``closedloop demo`` prints. It counts the cases opened since
    ``started_at`` (the demo command's start; default: now), so also those the
    analysis opened before this receiver ran.
    """
    started_at = started_at or utcnow()
    # The rule reads the comments' sentiment: analyse the demo's responses first.
    analyse_demo_responses(sender)
    scan()  # opens what the analysis left unopened
    analyst = find_user(DEMO_ANALYST)
    created = linked = calls = 0
    for spec in DEMO_ROOT_CAUSES:
        root_cause = db.session.scalar(select(RootCause).where(RootCause.title == spec["title"]))
        if root_cause is None:
            root_cause = create_root_cause(
                spec["title"],
                description=spec["description"],
                problem_type=spec["problem_type"],
                themes=spec["themes"],
                user=analyst,
            )
            for category, statement in spec["whys"]:
                add_why(root_cause, statement, category, analyst)
            root_cause.status = spec["status"]
            created += 1
        phrases = spec["phrases"]
        cases = db.session.scalars(
            select(FeedbackCase)
            .join(SurveyResponse, SurveyResponse.id == FeedbackCase.response_id)
            .where(
                # The demo's comments that speak of this cause (see survey_app.demo_comments).
                or_(*(SurveyResponse.comment.contains(p, autoescape=True) for p in phrases)),
                FeedbackCase.root_cause_id.is_(None),
                FeedbackCase.status != CaseStatus.DISMISSED,
            )
            .options(selectinload(FeedbackCase.call_backs), selectinload(FeedbackCase.ticket))
            .order_by(FeedbackCase.id)
        ).all()
        for case in cases:
            link_case(case, root_cause)
            linked += 1
            calls += _work_case(case, spec, analyst)
    # Most cases open as the responses are analysed (the rule listens to the analysis,
    # which may have run before this receiver); the scan opens whatever was left. The line
    # counts both.
    opened = _cases_opened_since(started_at)
    db.session.commit()
    return (
        f"Root causes: {opened} cases opened by the low-feedback rule, "
        f"{created} root causes created, {linked} feedback items linked, "
        f"{calls} call-backs logged."
    )


def _cases_opened_since(started_at: datetime) -> int:
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(FeedbackCase)
            .where(FeedbackCase.opened_at >= started_at)
        )
        or 0
    )


def _work_case(case: FeedbackCase, spec: dict[str, Any], analyst: Any) -> int:
    """Triage a linked demo case and, for most, log a call-back; return call-backs logged."""
    rng = random.Random(f"demo-case:{case.id}")
    if case.call_backs or rng.random() < 0.3:
        return 0
    base = case.ticket.resolved_at or case.ticket.closed_at or case.opened_at
    called_at = min(base + timedelta(hours=rng.randint(4, 9 * 24)), utcnow() - timedelta(hours=1))
    outcome = rng.choice(OUTCOMES)
    log_call_back(case, user=analyst, called_at=called_at, outcome=outcome, note="")
    resolved = outcome in COMPLETING_OUTCOMES and rng.random() < 0.6
    classify_case(
        case,
        problem_type=case.problem_type or spec["problem_type"],
        urgency=rng.choice((1, 2, 2, 3)),
        reach=spec["reach"],
        touchpoint=case.touchpoint,
        process_step=spec["step"],
        responsible_party=spec["party"],
        status=CaseStatus.RESOLVED if resolved else CaseStatus.IN_PROGRESS,
    )
    return 1
