"""What the PDCA operations share: limits, audit fields, errors, scopes and roles.

The operations live by area: :mod:`.plan` (opening a cycle and editing its
plan), :mod:`.actions` (action items), :mod:`.stages` (approval, stage moves
and the Act decision) and :mod:`.lists` (the board, a user's actions, chart
markers, form choices). The web views, the CLI and the jobs call them. They
check the gates and the caller's role, change state and flush; the caller
commits (one commit per request or command) or rolls back when one raises
:class:`PdcaError` (message meant for the user; :class:`PdcaForbidden` for a
role that may not do it). Nothing is half-written.

Roles (admins may do everything): a cycle's owner is an active manager or
admin; any staff member may open a cycle at Plan (owned by a manager), edit the
plan while at Plan and add actions; approval, stage moves and the Act decision
are managers'; an action is updated by its owner, the cycle's owner or a manager.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _

from analysis.metrics import Scope, ScopeError, metrics_timezone
from analysis.metrics import parse_metrics_args as _parse
from improvement.audit.services import record_event, snapshot
from survey_app.models import Role, User

from .models import PdcaCycle

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
    "check_scheduled_for",
    "act_decision",
    "act_note",
)
ACTION_AUDIT_FIELDS = ("title", "owner_id", "deadline", "status", "evidence")


def audit_cycle(cycle: PdcaCycle, user: User | None, action: str, before: dict | None) -> None:
    """Record ``user``'s ``action`` on the cycle: its audited fields ``before`` and now."""
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


def require(allowed: bool, message: str) -> None:
    """Raise :class:`PdcaForbidden` with ``message`` unless ``allowed``."""
    if not allowed:
        raise PdcaForbidden(message)
