"""Action items of a PDCA cycle: adding them and updating their status and evidence.

Flush only; the caller commits (see :mod:`.common`).
"""

from __future__ import annotations

from datetime import date

from flask_babel import gettext as _

from improvement.audit.services import record_event, snapshot
from survey_app.extensions import db
from survey_app.models import User
from survey_app.types import utcnow

from .common import ACTION_AUDIT_FIELDS, MAX_TEXT, MAX_TITLE, PdcaError, is_manager, require
from .models import PENDING_ACTION_STATUSES, ActionItem, ActionStatus, PdcaCycle, Stage


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
    owner or a manager. A done action records when; reopening clears it. On a closed
    cycle only an action the Act kept open (still pending) can change, until finished."""
    require(
        user.id in (action.owner_id, action.cycle.owner_id) or is_manager(user),
        _("Only the action's owner, the cycle's owner or a manager can update this action."),
    )
    try:
        new_status = ActionStatus(status)
    except ValueError:
        raise PdcaError(_("Unknown status %(status)s.", status=status)) from None
    if len(evidence) > MAX_TEXT:
        raise PdcaError(_("The evidence note is too long."))
    if action.cycle.stage is Stage.CLOSED and action.status not in PENDING_ACTION_STATUSES:
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
