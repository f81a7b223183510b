"""Operations on PDCA cycles and action items; the web views, the CLI and the jobs call these.

They check the gates and the caller's role, change state and flush; the
caller commits (one commit per request or command) or rolls back when one
raises :class:`PdcaError` (message meant for the user; :class:`PdcaForbidden`
for a role that may not do it). Nothing is half-written.

Gates: Plan → Do needs at least one pending action item (each has an owner and
a deadline by construction) and a manager's approval; entering Check measures
the KPI; Check → Act needs a Check measurement; Act records standardise /
adjust / abandon and closes the cycle (optionally opening the next one).

Roles (admins may do everything): a cycle's owner is an active manager or
admin; any staff member may open a cycle at Plan (owned by a manager), edit the
plan while at Plan and add actions; approval, stage moves and the Act decision
are managers'; an action is updated by its owner, the cycle's owner or a manager.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from analysis.metrics import ALL_KPIS, Scope, ScopeError, compute, metrics_timezone
from analysis.metrics import parse_metrics_args as _parse
from improvement.audit.services import record_event, snapshot
from improvement.root_causes.models import CaseStatus, RootCause, RootCauseStatus
from survey_app.extensions import db
from survey_app.models import Role, User
from survey_app.types import utcnow

from .models import (
    PENDING_ACTION_STATUSES,
    ActDecision,
    ActionItem,
    ActionStatus,
    Comparison,
    PdcaCycle,
    Stage,
    StageChange,
    Verdict,
)

MAX_TITLE = 200
MAX_TEXT = 5000
#: Days after the Check at which the KPI is measured again.
RECHECK_DAYS = (30, 60, 90)


#: Fields of a cycle and of an action whose changes go to the audit trail.
CYCLE_AUDIT_FIELDS = (
    "title",
    "description",
    "owner_id",
    "stage",
    "scope",
    "pilot_scope",
    "control_scope",
    "kpi",
    "baseline_start",
    "baseline_end",
    "baseline_value",
    "target_value",
    "target_date",
    "root_causes",
    "approved_by_id",
    "act_decision",
    "act_note",
)
ACTION_AUDIT_FIELDS = ("title", "owner_id", "deadline", "status", "evidence")


def _audit_cycle(cycle: PdcaCycle, user: User | None, action: str, before: dict | None) -> None:
    record_event(user, "cycle", cycle.id, action, before, snapshot(cycle, CYCLE_AUDIT_FIELDS))


class PdcaError(ValueError):
    """A refused operation; the message says why, in the user's language. Nothing changed."""


class PdcaForbidden(PdcaError):
    """The user's role (or relation to the cycle) does not allow this operation."""


# --- scopes ----------------------------------------------------------------------------------


def _timezone() -> str:
    return metrics_timezone(current_app.config)


def clean_filters(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check dashboard filters (dimension → value or list) and return them in stored form.

    Refuses (PdcaError) unknown dimensions and values outside their enumerations,
    with the metrics module's own messages.
    """
    if not filters:
        return {}
    args: dict[str, Any] = {}
    for name, value in filters.items():
        if name in ("from", "to", "group_by", "grain"):
            raise PdcaError(_("Unknown filter %(name)s.", name=name))
        if isinstance(value, bool):
            value = "new" if value else "returning"
        args[name] = [str(v) for v in value] if isinstance(value, list | tuple) else str(value)
    try:
        scope = _parse(args, timezone=_timezone()).scope
    except ScopeError as exc:
        raise PdcaError(_("Bad scope: %(errors)s", errors=str(exc))) from None
    return dict(scope.to_json()["filters"])


def scope_for(filters: Mapping[str, Any] | None, start: date, end: date) -> Scope:
    """A :class:`~analysis.metrics.Scope` of stored filters over ``start``..``end``."""
    args: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat()}
    for name, value in (filters or {}).items():
        if isinstance(value, bool):
            value = "new" if value else "returning"
        args[name] = [str(v) for v in value] if isinstance(value, list | tuple) else str(value)
    try:
        return _parse(args, timezone=_timezone()).scope
    except ScopeError as exc:
        raise PdcaError(_("Bad scope: %(errors)s", errors=str(exc))) from None


def local_today() -> date:
    """Today in the metrics time zone (periods and deadlines are local days)."""
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo(_timezone())).date()


def local_date(moment: datetime) -> date:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(_timezone())).date()


# --- roles -----------------------------------------------------------------------------------


def is_manager(user: User | None) -> bool:
    return user is not None and user.has_role(Role.MANAGER)


def can_own(user: User | None) -> bool:
    """Whether ``user`` may own a cycle: an active manager or admin ("managers own cycles")."""
    return user is not None and user.active and is_manager(user)


def can_run(cycle: PdcaCycle, user: User | None) -> bool:
    """Who moves the cycle between stages and measures it again: the cycle's owner or a
    manager. An owner is always a manager or an admin (:func:`can_own`), so this is
    managers and admins; an analyst who owns one of its actions updates that action only."""
    return user is not None and is_manager(user)


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PdcaForbidden(message)


# --- plan ------------------------------------------------------------------------------------


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
            note=_("Opened from cycle #%(id)s.", id=previous.id) if previous is not None else "",
        )
    )
    db.session.flush()
    _audit_cycle(cycle, user, "create", None)
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
    _audit_cycle(cycle, user, "update_plan", before)
    return cycle


# --- action items ----------------------------------------------------------------------------


def add_action(
    cycle: PdcaCycle, *, title: str, owner: User | None, deadline: date | None, user: User | None
) -> ActionItem:
    """Add an action item; refuses one without a title, an owner or a deadline, and any
    change to a closed cycle."""
    title = (title or "").strip()
    if not title or len(title) > MAX_TITLE:
        raise PdcaError(_("An action needs a title of 1-%(max)s characters.", max=MAX_TITLE))
    if owner is None or not owner.active:
        raise PdcaError(_("An action needs an owner with an active account."))
    if deadline is None:
        raise PdcaError(_("An action needs a deadline."))
    if cycle.stage is Stage.CLOSED:
        raise PdcaError(_("This cycle is closed."))
    action = ActionItem(
        cycle=cycle, title=title, owner_id=owner.id, deadline=deadline, status=ActionStatus.OPEN
    )
    db.session.add(action)
    db.session.flush()
    record_event(user, "action", action.id, "create", None, snapshot(action, ACTION_AUDIT_FIELDS))
    return action


def update_action(
    action: ActionItem,
    *,
    status: ActionStatus | str,
    evidence: str,
    user: User,
    deadline: date | None = None,
) -> ActionItem:
    """Change an action's status, evidence note (and deadline); by its owner, the cycle's
    owner or a manager. A done action records when; reopening clears it."""
    _require(
        user.id in (action.owner_id, action.cycle.owner_id) or is_manager(user),
        _("Only the action's owner, the cycle's owner or a manager can update this action."),
    )
    try:
        new_status = ActionStatus(status)
    except ValueError:
        raise PdcaError(_("Unknown status %(status)s.", status=status)) from None
    if len(evidence) > MAX_TEXT:
        raise PdcaError(_("The evidence note is too long."))
    if action.cycle.stage is Stage.CLOSED:
        raise PdcaError(_("This cycle is closed."))
    before = snapshot(action, ACTION_AUDIT_FIELDS)
    if new_status is ActionStatus.DONE and action.status is not ActionStatus.DONE:
        action.done_at = utcnow()
    elif new_status is not ActionStatus.DONE:
        action.done_at = None
    action.status = new_status
    action.evidence = evidence.strip()
    if deadline is not None:
        action.deadline = deadline
    db.session.flush()
    record_event(
        user, "action", action.id, "update", before, snapshot(action, ACTION_AUDIT_FIELDS)
    )
    return action


# --- stages ----------------------------------------------------------------------------------


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
    _require(is_manager(user), _("Only a manager can approve a plan."))
    if cycle.stage is not Stage.PLAN:
        raise PdcaError(_("Only a plan can be approved; this cycle is past Plan."))
    if not _pending_actions(cycle):
        raise PdcaError(_("A plan needs at least one action with an owner and a deadline."))
    before = snapshot(cycle, CYCLE_AUDIT_FIELDS)
    cycle.approved_by_id, cycle.approved_at = user.id, utcnow()
    db.session.flush()
    _audit_cycle(cycle, user, "approve", before)
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
    _require(can_run(cycle, user), _("Only a manager can move a cycle between stages."))
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
        from .checks import measure

        measure(cycle, round_=0)
        db.session.flush()
        _audit_cycle(cycle, user, "advance", before)
        return cycle
    elif target is Stage.ACT and not any(m.round == 0 for m in cycle.measurements):
        raise PdcaError(_("Check cannot be left without a measurement."))
    _move(cycle, target, user, note)
    db.session.flush()
    _audit_cycle(cycle, user, "advance", before)
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
    _require(is_manager(user), _("Only a manager can decide at Act."))
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
    _audit_cycle(cycle, user, "act", before)
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


# --- lists -----------------------------------------------------------------------------------


def board() -> dict[Stage, list[PdcaCycle]]:
    """Every cycle by stage (closed ones: the 50 most recent), newest first."""
    cycles = db.session.scalars(
        select(PdcaCycle)
        .options(selectinload(PdcaCycle.owner), selectinload(PdcaCycle.actions))
        .order_by(PdcaCycle.updated_at.desc(), PdcaCycle.id.desc())
    ).all()
    columns: dict[Stage, list[PdcaCycle]] = {stage: [] for stage in Stage}
    for cycle in cycles:
        if cycle.stage is not Stage.CLOSED or len(columns[Stage.CLOSED]) < 50:
            columns[cycle.stage].append(cycle)
    return columns


def my_actions(user: User, include_finished: bool = False) -> list[ActionItem]:
    """The user's action items, the nearest deadline first (pending ones unless asked)."""
    query = (
        select(ActionItem)
        .where(ActionItem.owner_id == user.id)
        .options(selectinload(ActionItem.cycle))
        .order_by(ActionItem.deadline, ActionItem.id)
    )
    if not include_finished:
        query = query.where(ActionItem.status.in_(PENDING_ACTION_STATUSES))
    return list(db.session.scalars(query))


def cycle_overdue(cycle: PdcaCycle, today: date) -> bool:
    """True if an action is past its deadline, or the cycle is open past its target date."""
    if cycle.stage is not Stage.CLOSED and cycle.target_date < today:
        return True
    return any(action.overdue(today) for action in cycle.actions)


def _overlaps(cycle_filters: Mapping[str, Any], scope: Scope) -> bool:
    wanted = Scope.to_json(scope)["filters"]
    for name, value in cycle_filters.items():
        if name not in wanted:
            continue
        mine = set(value) if isinstance(value, list) else {value}
        theirs = set(wanted[name]) if isinstance(wanted[name], list) else {wanted[name]}
        if not mine & theirs:
            return False
    return True


def action_dates(scope: Scope) -> list[tuple[date, str]]:
    """Markers for a trend chart over ``scope``: ``[(local date, label)]``, by date.

    The start of Do, the Check and the Act of every cycle whose scope overlaps
    ``scope`` (each dimension both filter on shares a value), and the day each
    of its actions was done, inside the scope's period.
    """
    markers: list[tuple[date, str]] = []
    cycles = db.session.scalars(
        select(PdcaCycle)
        .where(PdcaCycle.do_started_at.is_not(None))
        .options(selectinload(PdcaCycle.actions))
    )
    for cycle in cycles:
        if not _overlaps(cycle.scope, scope):
            continue
        events: list[tuple[datetime | None, str]] = [
            (cycle.do_started_at, _("Do: %(title)s", title=cycle.title)),
            (cycle.check_started_at, _("Check: %(title)s", title=cycle.title)),
            (cycle.closed_at, _("Act: %(title)s", title=cycle.title)),
        ]
        events += [(a.done_at, _("Done: %(title)s", title=a.title)) for a in cycle.actions]
        for moment, label in events:
            if moment is None:
                continue
            day = local_date(moment)
            if scope.start <= day <= scope.end:
                markers.append((day, label))
    return sorted(markers)


def users_for_choice() -> list[User]:
    """Active staff, by name, for the owner of an action."""
    return list(
        db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.name, User.id))
    )


def owners_for_choice() -> list[User]:
    """Active managers and admins, by name: the people who may own a cycle (:func:`can_own`)."""
    return list(
        db.session.scalars(
            select(User)
            .where(User.active.is_(True), User.role.in_((Role.MANAGER, Role.ADMIN)))
            .order_by(User.name, User.id)
        )
    )


def root_causes_for_choice(extra: Iterable[RootCause] = ()) -> list[RootCause]:
    """Root causes a cycle can work on (open or confirmed), plus those already linked."""
    found = list(
        db.session.scalars(
            select(RootCause)
            .where(RootCause.status.in_((RootCauseStatus.OPEN, RootCauseStatus.CONFIRMED)))
            .order_by(RootCause.id)
        )
    )
    return found + [rc for rc in extra if rc not in found]
