"""The PDCA part of ``closedloop demo``: three cycles at Plan, Do and Check, with actions.

Runs on the ``demo_seeded`` signal after the root-cause part (so the demo root
causes exist). As in the permissions: the analyst drafts each plan and owns its
actions, the manager owns the cycle, approves it and moves it. Safe to run
again: a cycle is found by its title. Dates are set back so the Check compares
the first and the second half of the demo's 90 days, computed from the data
like any other Check.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from improvement.root_causes.models import RootCause
from survey_app.auth.services import find_user
from survey_app.extensions import db
from survey_app.types import utcnow

from .actions import add_action
from .common import local_today
from .models import ActionStatus, PdcaCycle
from .plan import PlanInput, create_cycle
from .stages import advance, approve_plan

DEMO_CYCLES: tuple[dict[str, Any], ...] = (
    {
        "title": "高峰排班调整 Peak-hour rosters follow the hourly volume",
        "root_cause": "高峰时段排班不足",
        "kpi": "csat_speed_percent",
        "target": 85.0,
        "stage": "check",
        "actions": (
            ("按小时统计来电量 Measure contacts per hour", -60, ActionStatus.DONE),
            ("高峰时段增加两名坐席 Two more agents 10:00-12:00", -50, ActionStatus.DONE),
        ),
    },
    {
        "title": "结案前回访确认 Confirm the fix before closing",
        "root_cause": "结案前不验证解决效果",
        "kpi": "fcr",
        "target": 80.0,
        "stage": "do",
        "actions": (
            ("结案检查清单 Closing checklist in the helpdesk", -3, ActionStatus.IN_PROGRESS),
            ("培训一线 Train the frontline team", 10, ActionStatus.OPEN),
        ),
    },
    {
        "title": "新产品线知识库 Knowledge base for the new product line",
        "root_cause": "新产品线知识库缺失",
        "kpi": "nps",
        "target": 30.0,
        "stage": "plan",
        "actions": (("编写 20 篇常见问题 Write the top-20 FAQ", 21, ActionStatus.OPEN),),
    },
)


def seed_demo_cycles(sender: Flask, **_extra: Any) -> str | None:
    """Create the demo cycles that do not exist yet; commit; return the summary line."""
    manager = find_user("manager@example.com")
    analyst = find_user("analyst@example.com")
    if manager is None or analyst is None:
        return None
    today = local_today()
    created = 0
    for spec in DEMO_CYCLES:
        if db.session.scalar(select(PdcaCycle).where(PdcaCycle.title == spec["title"])):
            continue
        root_cause = db.session.scalar(
            select(RootCause).where(RootCause.title.startswith(spec["root_cause"]))
        )
        cycle = create_cycle(
            PlanInput(
                title=spec["title"],
                owner=manager,
                kpi=spec["kpi"],
                baseline_start=today - timedelta(days=90),
                baseline_end=today - timedelta(days=46),
                target_value=spec["target"],
                target_date=today + timedelta(days=60),
                root_causes=(root_cause,) if root_cause is not None else (),
            ),
            analyst,
        )
        for title, days, status in spec["actions"]:
            action = add_action(
                cycle,
                title=title,
                owner=analyst,
                deadline=today + timedelta(days=days),
                user=analyst,
            )
            action.status = status
            if status is ActionStatus.DONE:
                action.done_at = utcnow() + timedelta(days=days)
        if spec["stage"] in ("do", "check"):
            approve_plan(cycle, manager)
            advance(cycle, "do", manager, "Approved in the weekly quality meeting.")
            cycle.do_started_at = utcnow() - timedelta(days=45)
        if spec["stage"] == "check":
            # The demo's few answers rarely reach the minimum sample: checked anyway, with
            # the reason in the stage log, as a manager would.
            advance(
                cycle,
                "check",
                manager,
                "Rosters changed 45 days ago; the weekly meeting wants a first look.",
                anyway=True,
            )
        created += 1
    db.session.commit()
    return f"PDCA: {created} demo cycles created."
