"""The KPI-target part of ``closedloop demo``: a few organisation-wide targets, so the
dashboard and the targets page show status colours from the first visit.

Runs on the ``demo_seeded`` signal. Only when there is no target at all: targets an
organisation set (or deleted) are its own, so running the demo again changes nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import func, select

from survey_app.extensions import db

from .models import KpiTarget
from .services import TargetSpec, save_target

#: The manager of the demo accounts receives the demo alerts (in the outbox, in development).
DEMO_RECIPIENT = "manager@example.com"

#: Targets a support organisation might set; with the demo's service some are met, some not.
#: Thresholds are gaps on the bad side of the target (see :mod:`analysis.targets.status`).
DEMO_TARGETS: tuple[TargetSpec, ...] = (
    TargetSpec(
        kpi="csat_overall_percent",
        target=75.0,
        yellow=0.0,
        orange=3.0,
        red=6.0,
        window_days=30,
        recipients=(DEMO_RECIPIENT,),
        note="Demo: three customers in four satisfied (4 or 5 of 5).",
    ),
    TargetSpec(
        kpi="nps",
        target=25.0,
        yellow=0.0,
        orange=3.0,
        red=15.0,
        window_days=30,
        recipients=(DEMO_RECIPIENT,),
        note="Demo: NPS of 25 or more.",
    ),
    TargetSpec(
        kpi="first_response_time_p90",
        target=7200.0,
        yellow=0.0,
        orange=2700.0,
        red=5400.0,
        window_days=30,
        recipients=(DEMO_RECIPIENT,),
        note="Demo: nine first responses in ten within 2 working hours.",
    ),
    TargetSpec(
        kpi="fcr",
        target=70.0,
        yellow=0.0,
        orange=5.0,
        red=10.0,
        window_days=30,
        recipients=(DEMO_RECIPIENT,),
        note="Demo: seven tickets in ten solved at the first contact.",
    ),
)


def seed_demo_targets(sender: Flask, **_extra: Any) -> str:
    """Create :data:`DEMO_TARGETS` when no target exists; commit; return the demo's line."""
    existing = int(db.session.scalar(select(func.count()).select_from(KpiTarget)) or 0)
    if existing:
        return f"KPI targets: {existing} already set, left as they are."
    for spec in DEMO_TARGETS:
        save_target(spec)
    db.session.commit()
    return f"KPI targets: {len(DEMO_TARGETS)} demo targets set (CSAT %, NPS, FRT P90, FCR)."
