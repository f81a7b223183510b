"""PDCA test data for the role matrix: a cycle at Plan, owned by another manager (owners are
managers or admins), with one action."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from survey_app.extensions import db
from survey_app.models import Role, User
from tests.kpi_data import KpiData

ZONE = ZoneInfo("Asia/Shanghai")


def pdca_matrix_ids() -> dict[str, int]:
    """Ids of a Plan-stage cycle (baseline from two answers 35 days ago) and of its action."""
    from improvement.pdca.actions import add_action
    from improvement.pdca.plan import PlanInput, create_cycle

    today = datetime.now(ZONE).date()
    kd = KpiData()
    for score in (5, 2):
        submitted = datetime.combine(today - timedelta(days=35), time(12), ZONE).astimezone(UTC)
        kd.response(kd.ticket(), submitted_at=submitted, csat_overall=score)
    owner = User(email="cycle-owner@example.com", role=Role.MANAGER, password_hash="x")
    db.session.add(owner)
    db.session.flush()
    cycle = create_cycle(
        PlanInput(
            title="Matrix cycle",
            owner=owner,
            kpi="csat_overall_percent",
            baseline_start=today - timedelta(days=40),
            baseline_end=today - timedelta(days=31),
            target_value=80.0,
            target_date=today + timedelta(days=30),
        ),
        owner,
    )
    action = add_action(
        cycle, title="Matrix action", owner=owner, deadline=today + timedelta(days=5), user=owner
    )
    db.session.commit()
    return {"cycle_id": cycle.id, "action_id": action.id, "cycle_owner_id": owner.id}


def matrix_form(owner_id: int, title: str) -> dict[str, str]:
    """A valid plan form for the matrix's POSTs."""
    today = datetime.now(ZONE).date()
    return {
        "title": title,
        "owner_id": str(owner_id),
        "kpi": "csat_overall_percent",
        "scope": "",
        "baseline_start": (today - timedelta(days=40)).isoformat(),
        "baseline_end": (today - timedelta(days=31)).isoformat(),
        "target_value": "80",
        "target_date": (today + timedelta(days=30)).isoformat(),
    }
