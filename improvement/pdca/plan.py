"""The plan of a PDCA cycle: opening a cycle at Plan with its baseline, and editing the plan.

Flush only; the caller commits (see :mod:`.common`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date
from typing import Any

from flask_babel import gettext as _

from analysis.metrics import ALL_KPIS, compute
from improvement.audit.services import snapshot
from improvement.root_causes.models import RootCause
from survey_app.extensions import db
from survey_app.models import User
from survey_app.types import utcnow

from .common import (
    CYCLE_AUDIT_FIELDS,
    MAX_TEXT,
    MAX_TITLE,
    PdcaError,
    audit_cycle,
    can_own,
    clean_filters,
    local_today,
    scope_for,
)
from .labels import OPENED_FROM, system_note
from .models import PdcaCycle, Stage, StageChange


@dataclasses.dataclass(frozen=True)
class PlanInput:
    """What a plan says: the KPI target over a scope, with its baseline period."""

    title: str
    owner: User
    kpi: str
    baseline_start: date
    baseline_end: date
    target_value: float
    target_date: date
    scope: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    description: str = ""
    root_causes: tuple[RootCause, ...] = ()
    pilot_scope: Mapping[str, Any] | None = None
    control_scope: Mapping[str, Any] | None = None


def _check_plan(plan: PlanInput) -> tuple[str, dict[str, Any], Any, Any]:
    title = plan.title.strip()
    if not title or len(title) > MAX_TITLE:
        raise PdcaError(_("A title of 1-%(max)s characters is needed.", max=MAX_TITLE))
    if len(plan.description) > MAX_TEXT:
        raise PdcaError(_("The description is too long."))
    if plan.kpi not in ALL_KPIS:
        raise PdcaError(_("Unknown metric %(name)s.", name=plan.kpi))
    if plan.baseline_start > plan.baseline_end:
        raise PdcaError(_("The baseline period starts after it ends."))
    if plan.baseline_end >= local_today():
        raise PdcaError(_("The baseline period must end before today."))
    if (plan.baseline_end - plan.baseline_start).days > 3660:
        raise PdcaError(_("The baseline period is over 10 years."))
    if plan.target_date <= plan.baseline_end:
        raise PdcaError(_("The target date must come after the baseline period."))
    if not plan.owner.active:
        raise PdcaError(_("The owner's account is deactivated."))
    if not can_own(plan.owner):
        raise PdcaError(
            _(
                "A cycle's owner must be a manager or an admin (managers own cycles; "
                "analysts may draft the plan and own its actions)."
            )
        )
    filters = clean_filters(plan.scope)
    pilot = clean_filters(plan.pilot_scope) if plan.pilot_scope else None
    control = clean_filters(plan.control_scope) if plan.control_scope else None
    if (pilot is None) != (control is None):
        raise PdcaError(_("Give both a pilot scope and a control scope, or neither."))
    return title, filters, pilot, control


def _baseline(kpi: str, filters: Mapping[str, Any], start: date, end: date) -> tuple[float, int]:
    """The KPI over the scope and baseline period, by :func:`analysis.metrics.compute`.

    Refuses a scope that matches nothing (n = 0).
    """
    result = compute(scope_for(filters, start, end), metrics=[kpi])
    value = result.overall[kpi]
    if value.n == 0 or value.value is None:
        raise PdcaError(
            _("The scope matches no data in the baseline period: no baseline can be computed.")
        )
    return value.value, value.n


def create_cycle(
    plan: PlanInput, user: User | None, previous: PdcaCycle | None = None
) -> PdcaCycle:
    """Open a cycle at Plan with its baseline computed; log its creation.

    Refuses a bad title, an unknown metric, a bad period or scope, and a scope
    that matches nothing in the baseline period.
    """
    title, filters, pilot, control = _check_plan(plan)
    value, n = _baseline(plan.kpi, filters, plan.baseline_start, plan.baseline_end)
    cycle = PdcaCycle(
        title=title,
        description=plan.description.strip(),
        owner_id=plan.owner.id,
        stage=Stage.PLAN,
        scope=filters,
        pilot_scope=pilot,
        control_scope=control,
        kpi=plan.kpi,
        baseline_start=plan.baseline_start,
        baseline_end=plan.baseline_end,
        baseline_value=value,
        baseline_n=n,
        target_value=float(plan.target_value),
        target_date=plan.target_date,
        previous_id=previous.id if previous is not None else None,
        created_by_id=user.id if user is not None else None,
        root_causes=list(plan.root_causes),
    )
    db.session.add(cycle)
    db.session.add(
        StageChange(
            cycle=cycle,
            from_stage=None,
            to_stage=Stage.PLAN,
            user_id=user.id if user is not None else None,
            changed_at=utcnow(),
            note=system_note(OPENED_FROM, id=previous.id) if previous is not None else "",
        )
    )
    db.session.flush()
    audit_cycle(cycle, user, "create", None)
    return cycle


def update_plan(cycle: PdcaCycle, plan: PlanInput, user: User) -> PdcaCycle:
    """Rewrite the plan of a cycle still at Plan; the baseline is recomputed and an earlier
    approval is withdrawn (the manager approves what is now written)."""
    if cycle.stage is not Stage.PLAN:
        raise PdcaError(_("Only a plan can be edited; this cycle is past Plan."))
    title, filters, pilot, control = _check_plan(plan)
    value, n = _baseline(plan.kpi, filters, plan.baseline_start, plan.baseline_end)
    before = snapshot(cycle, CYCLE_AUDIT_FIELDS)
    cycle.title, cycle.description = title, plan.description.strip()
    cycle.owner_id = plan.owner.id
    cycle.scope, cycle.pilot_scope, cycle.control_scope = filters, pilot, control
    cycle.kpi = plan.kpi
    cycle.baseline_start, cycle.baseline_end = plan.baseline_start, plan.baseline_end
    cycle.baseline_value, cycle.baseline_n = value, n
    cycle.target_value, cycle.target_date = float(plan.target_value), plan.target_date
    cycle.root_causes = list(plan.root_causes)
    if cycle.approved_at is not None:
        cycle.approved_at = cycle.approved_by_id = None
    db.session.flush()
    audit_cycle(cycle, user, "update_plan", before)
    return cycle
