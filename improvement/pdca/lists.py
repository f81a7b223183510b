"""Lists of PDCA cycles and action items: the board, a user's actions, markers for trend
charts and the choices of the forms."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from analysis.metrics import Scope
from improvement.root_causes.models import RootCause, RootCauseStatus
from survey_app.extensions import db
from survey_app.models import Role, User

from .common import local_date
from .models import PENDING_ACTION_STATUSES, ActionItem, PdcaCycle, Stage


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
    return filters_overlap(cycle_filters, Scope.to_json(scope)["filters"])


def filters_overlap(cycle_filters: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a cycle's scope filters and ``wanted`` (a scope's JSON filters) share rows: no
    dimension that both name lists disjoint values."""
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
