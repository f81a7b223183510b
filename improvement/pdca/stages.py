"""A PDCA cycle's way through its stages: approval, stage moves and the Act decision.

Gates (one place, :func:`move_blockers`, used by the cycle page and by
:func:`advance`): Plan → Do needs at least one pending action item (each has
an owner and a deadline by construction) and a manager's approval; Do → Check
needs the KPI's minimum sample (``METRICS_MIN_SAMPLE``) in the Check window
(Do start to today, the cycle's scope), else the Check can be scheduled
(:func:`schedule_check`; the periodic job :func:`run_scheduled_checks` enters
it on or after that day once the window has enough) or, by a manager with a
note, entered anyway; entering Check measures the KPI (:mod:`.checks`);
Check → Act needs a Check measurement; Act records standardise / adjust /
abandon, says what happens to actions still pending (carried into the next
cycle, cancelled or kept open) and closes the cycle (optionally opening the
next one). Flush only; the caller commits (see :mod:`.common`), except the
periodic job, which commits each cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from improvement.audit.services import record_event, snapshot
from improvement.root_causes.models import CaseStatus, RootCauseStatus
from survey_app.extensions import db
from survey_app.labels import label
from survey_app.models import User
from survey_app.types import utcnow

from .checks import WindowSample, measure, run_due_rechecks, window_sample
from .common import (
    ACTION_AUDIT_FIELDS,
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
from .labels import (
    ACTIONS_CANCELLED,
    ACTIONS_CARRIED,
    ACTIONS_KEPT,
    CASES_CLOSED,
    CHECKED_EARLY,
    SCHEDULED_CHECK,
    system_note,
)
from .models import (
    PENDING_ACTION_STATUSES,
    ActDecision,
    ActionItem,
    ActionStatus,
    Comparison,
    OpenActions,
    PdcaCycle,
    Stage,
    StageChange,
    Verdict,
)
from .plan import PlanInput, create_cycle

#: The one legal move out of each stage that :func:`advance` makes (Act → closed is
#: :func:`record_act`).
NEXT_STAGE = {Stage.PLAN: Stage.DO, Stage.DO: Stage.CHECK, Stage.CHECK: Stage.ACT}


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


def _pending_actions(cycle: PdcaCycle) -> list[ActionItem]:
    return [a for a in cycle.actions if a.status is not ActionStatus.CANCELLED]


def open_actions(cycle: PdcaCycle) -> list[ActionItem]:
    """The cycle's actions still to be done (open, in progress, blocked)."""
    return [a for a in cycle.actions if a.status in PENDING_ACTION_STATUSES]


def approval_blockers(cycle: PdcaCycle) -> list[str]:
    """Why the plan cannot be approved now (empty: it can); the role is checked apart."""
    if cycle.stage is not Stage.PLAN:
        return [_("Only a plan can be approved; this cycle is past Plan.")]
    if not _pending_actions(cycle):
        return [_("A plan needs at least one action with an owner and a deadline.")]
    return []


def sample_message(sample: WindowSample) -> str:
    """Why Check must wait: the window's count, the minimum and when it should have enough."""
    count = _(
        "The Check window (%(start)s – %(end)s) has %(n)s of the %(needed)s observations "
        "the Check needs.",
        start=sample.start.isoformat(),
        end=sample.end.isoformat(),
        n=sample.n,
        needed=sample.needed,
    )
    if sample.ready_by is None:
        return count + " " + _("Nothing observed yet, so when it will have enough is unknown.")
    return (
        count
        + " "
        + _(
            "At the rate so far it should have enough by %(date)s.",
            date=sample.ready_by.isoformat(),
        )
    )


@dataclass(frozen=True)
class Move:
    """A stage move: where to, and the reasons it is refused now (none: it is allowed).
    ``sample`` is the Check window's sample for a move to Check."""

    to: Stage
    blockers: tuple[str, ...]
    sample: WindowSample | None = None

    @property
    def allowed(self) -> bool:
        return not self.blockers

    @property
    def only_short_of_data(self) -> bool:
        """Refused only because the Check window lacks data (a manager may check anyway)."""
        return (
            self.sample is not None
            and not self.sample.enough
            and self.blockers == (sample_message(self.sample),)
        )


def move_blockers(cycle: PdcaCycle, target: Stage, today: date | None = None) -> Move:
    """The move of ``cycle`` to ``target`` with every reason it is refused now (the stage
    order and the gates of the module docstring; none: allowed). The role is checked apart,
    so that a role's refusal stays :class:`~.common.PdcaForbidden`."""
    if NEXT_STAGE.get(cycle.stage) is not target:
        message = _(
            "A cycle at %(stage)s cannot move to %(target)s.",
            stage=label(cycle.stage),
            target=label(target),
        )
        return Move(target, (message,))
    reasons: list[str] = []
    sample = None
    if target is Stage.DO:
        if not _pending_actions(cycle):
            reasons.append(_("Do needs at least one action with an owner and a deadline."))
        if cycle.approved_at is None:
            reasons.append(_("Do needs a manager's approval of the plan."))
    elif target is Stage.CHECK:
        sample = window_sample(cycle, today)
        if not sample.enough:
            reasons.append(sample_message(sample))
    elif not any(m.round == 0 for m in cycle.measurements):
        reasons.append(_("Check cannot be left without a measurement."))
    return Move(target, tuple(reasons), sample)


def next_move(cycle: PdcaCycle, today: date | None = None) -> Move | None:
    """The one move :func:`advance` can make from the cycle's stage, with its blockers; None
    at Act (the decision, :func:`record_act`) and once closed."""
    target = NEXT_STAGE.get(cycle.stage)
    return move_blockers(cycle, target, today) if target is not None else None


def approve_plan(cycle: PdcaCycle, user: User) -> PdcaCycle:
    """Record a manager's approval of the plan (who, when). Refuses non-managers, a cycle
    past Plan, and a plan without a pending action item."""
    require(is_manager(user), _("Only a manager can approve a plan."))
    reasons = approval_blockers(cycle)
    if reasons:
        raise PdcaError(" ".join(reasons))
    before = snapshot(cycle, CYCLE_AUDIT_FIELDS)
    cycle.approved_by_id, cycle.approved_at = user.id, utcnow()
    db.session.flush()
    audit_cycle(cycle, user, "approve", before)
    return cycle


def advance(
    cycle: PdcaCycle, to: Stage | str, user: User, note: str = "", *, anyway: bool = False
) -> PdcaCycle:
    """Move the cycle one stage on: Plan → Do, Do → Check (which measures the KPI),
    Check → Act. Refuses any other move, a user who neither owns the cycle nor manages,
    and a gate not passed (:func:`move_blockers`, every reason in the message).

    ``anyway`` enters Check although the window is short of data (the only gate it
    lifts); it needs a note saying why, kept in the stage log and the audit trail.
    Act is left with :func:`record_act`."""
    try:
        target = Stage(to)
    except ValueError:
        raise PdcaError(_("Unknown stage %(stage)s.", stage=to)) from None
    require(can_run(cycle, user), _("Only a manager can move a cycle between stages."))
    move = move_blockers(cycle, target)
    early = anyway and move.only_short_of_data
    if move.blockers and not early:
        raise PdcaError(" ".join(move.blockers))
    before = snapshot(cycle, CYCLE_AUDIT_FIELDS)
    if target is Stage.CHECK:
        if early:
            assert move.sample is not None
            if not note.strip():
                raise PdcaError(_("Checking before the window has enough data needs a note why."))
            note = system_note(
                CHECKED_EARLY, n=move.sample.n, needed=move.sample.needed, note=note.strip()
            )
        _enter_check(cycle, user, note)
        audit_cycle(cycle, user, "check_anyway" if early else "advance", before)
        return cycle
    if target is Stage.DO:
        cycle.do_started_at = utcnow()
    _move(cycle, target, user, note)
    db.session.flush()
    audit_cycle(cycle, user, "advance", before)
    return cycle


def _enter_check(cycle: PdcaCycle, user: User | None, note: str) -> None:
    cycle.check_started_at = utcnow()
    cycle.check_scheduled_for = None
    _move(cycle, Stage.CHECK, user, note)
    measure(cycle, round_=0)
    db.session.flush()


def schedule_check(
    cycle: PdcaCycle, user: User, on: date | None, today: date | None = None
) -> PdcaCycle:
    """Schedule the Check of a cycle at Do for the local day ``on`` (None: cancel the
    schedule); managers only. The periodic job enters Check on or after that day once the
    window has the minimum sample. Refuses a cycle not at Do and a day in the past."""
    require(can_run(cycle, user), _("Only a manager can schedule the Check."))
    if cycle.stage is not Stage.DO:
        raise PdcaError(_("Only a cycle at Do can have its Check scheduled."))
    if on is not None and on < (today or local_today()):
        raise PdcaError(_("The Check cannot be scheduled in the past."))
    before = snapshot(cycle, CYCLE_AUDIT_FIELDS)
    cycle.check_scheduled_for = on
    db.session.flush()
    audit_cycle(cycle, user, "schedule_check" if on else "unschedule_check", before)
    return cycle


def run_scheduled_checks(today: date | None = None) -> int:
    """Enter Check (as the system, no user) for every cycle at Do whose scheduled day has
    come and whose window now has the minimum sample; commit each cycle; return how many.
    A cycle still short of data waits for a later round. Safe to run twice: a cycle that
    entered Check is no longer at Do."""
    today = today or local_today()
    due = db.session.scalars(
        select(PdcaCycle)
        .where(PdcaCycle.stage == Stage.DO, PdcaCycle.check_scheduled_for <= today)
        .order_by(PdcaCycle.id)
    ).all()
    started = 0
    for cycle in due:
        try:
            sample = window_sample(cycle, today)
            if not sample.enough:
                continue
            before = snapshot(cycle, CYCLE_AUDIT_FIELDS)
            note = system_note(
                SCHEDULED_CHECK,
                day=cycle.check_scheduled_for.isoformat() if cycle.check_scheduled_for else "",
                n=sample.n,
            )
            _enter_check(cycle, None, note)
            audit_cycle(cycle, None, "scheduled_check", before)
            db.session.commit()
            started += 1
        except Exception:
            db.session.rollback()
            current_app.logger.exception("scheduled Check of cycle %s failed", cycle.id)
    return started


def run_due_checks(today: date | None = None) -> int:
    """The periodic PDCA job: the scheduled Checks that are due, then the due re-checks;
    return how many of both were done."""
    return run_scheduled_checks(today) + run_due_rechecks(today)


def record_act(
    cycle: PdcaCycle,
    decision: ActDecision | str,
    user: User,
    note: str = "",
    *,
    open_next: bool = False,
    pending: OpenActions | str | None = None,
) -> tuple[PdcaCycle, PdcaCycle | None]:
    """Record the Act decision (managers only) and close the cycle; return ``(cycle, next)``.

    Standardise with a met Check closes the linked root causes and their open
    feedback cases (status resolved). ``open_next`` opens the next cycle at Plan
    with the same KPI, scope and root causes, linked to this one, its baseline
    the 30 days up to yesterday and its target and target date carried over
    (moved 90 days on if already past).

    While actions are still pending, ``pending`` must say what happens to them:
    carried into the next cycle (only with ``open_next``), cancelled, or kept open
    on the closed cycle for their owners to finish; refused without it. Each
    action's change goes to the audit trail, the choice to the stage log.
    """
    require(is_manager(user), _("Only a manager can decide at Act."))
    try:
        chosen = ActDecision(decision)
    except ValueError:
        raise PdcaError(_("Unknown decision %(decision)s.", decision=decision)) from None
    if cycle.stage is not Stage.ACT:
        raise PdcaError(_("Only a cycle at Act can take a decision."))
    still_open = open_actions(cycle)
    fate = _open_actions_choice(still_open, pending, open_next)
    before = snapshot(cycle, CYCLE_AUDIT_FIELDS)
    cycle.act_decision, cycle.act_note = chosen, note.strip()[:MAX_TEXT]
    cycle.closed_at = utcnow()
    summary = [note.strip()] if note.strip() else []
    if chosen is ActDecision.STANDARDISE and check_verdict(cycle) is Verdict.MET:
        closed = close_linked_cases(cycle)
        summary.append(system_note(CASES_CLOSED, count=closed))
    following = _open_next_cycle(cycle, user) if open_next else None
    if fate is not None:
        summary.append(_settle_open_actions(still_open, fate, following, user))
    _move(cycle, Stage.CLOSED, user, "\n".join(summary))
    db.session.flush()
    audit_cycle(cycle, user, "act", before)
    if chosen is ActDecision.STANDARDISE:
        from improvement.close_loop.services import queue_close_loop

        queue_close_loop(cycle)
    db.session.flush()
    return cycle, following


def _open_actions_choice(
    still_open: list[ActionItem], pending: OpenActions | str | None, open_next: bool
) -> OpenActions | None:
    """The checked choice for the pending actions (None when there are none)."""
    if not still_open:
        return None
    if not pending:
        raise PdcaError(
            _(
                "Actions still open: %(num)s. Say what happens to them (carry them into the "
                "next cycle, cancel them, or keep them open).",
                num=len(still_open),
            )
        )
    try:
        fate = OpenActions(pending)
    except ValueError:
        raise PdcaError(
            _("Unknown choice %(choice)s for the open actions.", choice=pending)
        ) from None
    if fate is OpenActions.CARRY and not open_next:
        raise PdcaError(_("Open actions can only be carried into a next cycle: open one."))
    return fate


def _settle_open_actions(
    still_open: list[ActionItem],
    fate: OpenActions,
    following: PdcaCycle | None,
    user: User,
) -> str:
    """Carry, cancel or keep the pending actions; audit each; return the stage log line."""
    count = len(still_open)
    for action in still_open:
        if fate is OpenActions.CARRY:
            assert following is not None
            old = action.cycle_id
            action.cycle = following
            db.session.flush()
            record_event(
                user, "action", action.id, "carry", {"cycle_id": old}, {"cycle_id": following.id}
            )
        elif fate is OpenActions.CANCEL:
            earlier = snapshot(action, ACTION_AUDIT_FIELDS)
            action.status = ActionStatus.CANCELLED
            db.session.flush()
            record_event(
                user, "action", action.id, "cancel", earlier, snapshot(action, ACTION_AUDIT_FIELDS)
            )
    if fate is OpenActions.CARRY:
        assert following is not None
        return system_note(ACTIONS_CARRIED, id=following.id, num=count)
    if fate is OpenActions.CANCEL:
        return system_note(ACTIONS_CANCELLED, num=count)
    return system_note(ACTIONS_KEPT, num=count)


def _open_next_cycle(cycle: PdcaCycle, user: User) -> PdcaCycle:
    """The next cycle at Plan: same KPI, scope and root causes, a fresh baseline."""
    yesterday = local_today() - timedelta(days=1)
    target_date = cycle.target_date
    if target_date <= yesterday:
        target_date = yesterday + timedelta(days=91)
    return create_cycle(
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
