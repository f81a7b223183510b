"""A PDCA cycle's way through its stages: approval, stage moves and the Act decision.

Gates: Plan → Do needs at least one pending action item (each has an owner and
a deadline by construction) and a manager's approval; entering Check measures
the KPI (:mod:`.checks`); Check → Act needs a Check measurement; Act records
standardise / adjust / abandon and closes the cycle (optionally opening the
next one). Flush only; the caller commits (see :mod:`.common`).
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _

from improvement.audit.services import snapshot
from improvement.root_causes.models import CaseStatus, RootCauseStatus
from survey_app.extensions import db
from survey_app.models import User
from survey_app.types import utcnow

from .checks import measure
from .common import (
    CYCLE_AUDIT_FIELDS,
    MAX_TEXT,
    MAX_TITLE,
    PdcaError,
    audit_cycle,
    can_own,
    can_run,
    is_manager,
    local_today,
    require,
)
from .models import (
    ActDecision,
    ActionItem,
    ActionStatus,
    Comparison,
    PdcaCycle,
    Stage,
    StageChange,
    Verdict,
)
from .plan import PlanInput, create_cycle


def _move(cycle: PdcaCycle, to: Stage, user: User | None, note: str) -> None:
    db.session.add(
        StageChange(
            cycle=cycle,
            from_stage=cycle.stage,
            to_stage=to,
            user_id=user.id if user is not None else None,
            changed_at=utcnow(),
            note=note.strip()[:MAX_TEXT],
        )
    )
    cycle.stage = to


def approve_plan(cycle: PdcaCycle, user: User) -> PdcaCycle:
    """Record a manager's approval of the plan (who, when). Refuses non-managers, a cycle
    past Plan, and a plan without a pending action item."""
    require(is_manager(user), _("Only a manager can approve a plan."))
    if cycle.stage is not Stage.PLAN:
        raise PdcaError(_("Only a plan can be approved; this cycle is past Plan."))
    if not _pending_actions(cycle):
        raise PdcaError(_("A plan needs at least one action with an owner and a deadline."))
    before = snapshot(cycle, CYCLE_AUDIT_FIELDS)
    cycle.approved_by_id, cycle.approved_at = user.id, utcnow()
    db.session.flush()
    audit_cycle(cycle, user, "approve", before)
    return cycle


def _pending_actions(cycle: PdcaCycle) -> list[ActionItem]:
    return [a for a in cycle.actions if a.status is not ActionStatus.CANCELLED]


def advance(cycle: PdcaCycle, to: Stage | str, user: User, note: str = "") -> PdcaCycle:
    """Move the cycle one stage on: Plan → Do, Do → Check (which measures the KPI),
    Check → Act. Refuses any other move, a user who neither owns the cycle nor manages,
    and a gate not passed (see the module docstring). Act is left with :func:`record_act`."""
    try:
        target = Stage(to)
    except ValueError:
        raise PdcaError(_("Unknown stage %(stage)s.", stage=to)) from None
    require(can_run(cycle, user), _("Only a manager can move a cycle between stages."))
    allowed = {Stage.PLAN: Stage.DO, Stage.DO: Stage.CHECK, Stage.CHECK: Stage.ACT}
    if allowed.get(cycle.stage) is not target:
        raise PdcaError(
            _("A cycle at %(stage)s cannot move to %(target)s.", stage=cycle.stage, target=target)
        )
    before = snapshot(cycle, CYCLE_AUDIT_FIELDS)
    if target is Stage.DO:
        if not _pending_actions(cycle):
            raise PdcaError(_("Do needs at least one action with an owner and a deadline."))
        if cycle.approved_at is None:
            raise PdcaError(_("Do needs a manager's approval of the plan."))
        cycle.do_started_at = utcnow()
    elif target is Stage.CHECK:
        cycle.check_started_at = utcnow()
        _move(cycle, target, user, note)
        measure(cycle, round_=0)
        db.session.flush()
        audit_cycle(cycle, user, "advance", before)
        return cycle
    elif target is Stage.ACT and not any(m.round == 0 for m in cycle.measurements):
        raise PdcaError(_("Check cannot be left without a measurement."))
    _move(cycle, target, user, note)
    db.session.flush()
    audit_cycle(cycle, user, "advance", before)
    return cycle


def record_act(
    cycle: PdcaCycle,
    decision: ActDecision | str,
    user: User,
    note: str = "",
    *,
    open_next: bool = False,
) -> tuple[PdcaCycle, PdcaCycle | None]:
    """Record the Act decision (managers only) and close the cycle; return ``(cycle, next)``.

    Standardise with a met Check closes the linked root causes and their open
    feedback cases (status resolved). ``open_next`` opens the next cycle at Plan
    with the same KPI, scope and root causes, linked to this one, its baseline
    the 30 days up to yesterday and its target and target date carried over
    (moved 90 days on if already past).
    """
    require(is_manager(user), _("Only a manager can decide at Act."))
    try:
        chosen = ActDecision(decision)
    except ValueError:
        raise PdcaError(_("Unknown decision %(decision)s.", decision=decision)) from None
    if cycle.stage is not Stage.ACT:
        raise PdcaError(_("Only a cycle at Act can take a decision."))
    before = snapshot(cycle, CYCLE_AUDIT_FIELDS)
    cycle.act_decision, cycle.act_note = chosen, note.strip()[:MAX_TEXT]
    cycle.closed_at = utcnow()
    summary = note.strip()
    if chosen is ActDecision.STANDARDISE and check_verdict(cycle) is Verdict.MET:
        closed = close_linked_cases(cycle)
        summary = (summary + "\n" if summary else "") + _(
            "%(count)s linked feedback cases closed.", count=closed
        )
    _move(cycle, Stage.CLOSED, user, summary)
    db.session.flush()
    audit_cycle(cycle, user, "act", before)
    if chosen is ActDecision.STANDARDISE:
        from improvement.close_loop.services import queue_close_loop

        queue_close_loop(cycle)
    following = None
    if open_next:
        yesterday = local_today() - timedelta(days=1)
        target_date = cycle.target_date
        if target_date <= yesterday:
            target_date = yesterday + timedelta(days=91)
        following = create_cycle(
            PlanInput(
                title=cycle.title[: MAX_TITLE - 8] + " (next)",
                # A cycle opened before owners had to be managers goes to the decider.
                owner=cycle.owner if can_own(cycle.owner) else user,
                kpi=cycle.kpi,
                baseline_start=yesterday - timedelta(days=29),
                baseline_end=yesterday,
                target_value=cycle.target_value,
                target_date=target_date,
                scope=cycle.scope,
                description=cycle.description,
                root_causes=tuple(cycle.root_causes),
                pilot_scope=cycle.pilot_scope,
                control_scope=cycle.control_scope,
            ),
            user,
            previous=cycle,
        )
    db.session.flush()
    return cycle, following


def check_verdict(cycle: PdcaCycle) -> Verdict | None:
    """The verdict of the cycle's Check (its before/after measurement of round 0), if any."""
    for m in cycle.measurements:
        if m.round == 0 and m.comparison is Comparison.BEFORE_AFTER:
            return m.verdict
    return None


def close_linked_cases(cycle: PdcaCycle) -> int:
    """Resolve the cycle's root causes and close their open feedback cases; return how many
    cases were closed."""
    now = utcnow()
    closed = 0
    for root_cause in cycle.root_causes:
        root_cause.status = RootCauseStatus.RESOLVED
        for case in root_cause.cases:
            if case.status in (CaseStatus.NEW, CaseStatus.IN_PROGRESS):
                case.status = CaseStatus.RESOLVED
                case.closed_at = now
                closed += 1
    current_app.logger.info("cycle %s standardised: %s cases closed", cycle.id, closed)
    return closed
