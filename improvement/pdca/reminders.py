"""Due-soon and overdue reminders for action items, by e-mail to each action's owner.

An action still pending (open, in progress, blocked) gets one *due soon*
reminder when its deadline is within ``ACTION_DUE_SOON_DAYS`` days (default 3),
and one *overdue* reminder once the deadline has passed. Each is sent once per
action and kind: the :class:`~.models.ActionReminder` row is written before the
message goes out (its unique key stops a second process), and removed again if
the SMTP server refuses, so the next round retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_mail import Message
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from survey_app.extensions import db
from survey_app.models import User
from survey_app.outbound import OutboundError, failure_log_level, send_mail
from survey_app.surveys.links import public_url

from .common import local_today
from .models import PENDING_ACTION_STATUSES, ActionItem, ActionReminder, ReminderKind


@dataclass(frozen=True)
class ReminderReport:
    sent: int
    failed: int


def _kind(action: ActionItem, today: date, due_soon_days: int) -> ReminderKind | None:
    if action.deadline < today:
        return ReminderKind.OVERDUE
    if action.deadline <= today + timedelta(days=due_soon_days):
        return ReminderKind.DUE_SOON
    return None


def _message(action: ActionItem, owner: User, kind: ReminderKind, today: date) -> Message:
    language = owner.language or current_app.config["BABEL_DEFAULT_LOCALE"]
    with force_locale(language):
        if kind is ReminderKind.OVERDUE:
            subject = _("Overdue action: %(title)s", title=action.title)
        else:
            subject = _("Action due soon: %(title)s", title=action.title)
        context = {
            "action": action,
            "owner": owner,
            "kind": kind.value,
            "today": today,
            "link": public_url("pdca.cycle_detail", cycle_id=action.cycle_id),
        }
        body = render_template("pdca/email/reminder.txt", **context)
    return Message(
        subject=subject,
        recipients=[owner.email],
        body=body,
        extra_headers={"Auto-Submitted": "auto-generated", "X-ClosedLoop-Action": str(action.id)},
    )


def send_action_reminders(today: date | None = None) -> ReminderReport:
    """Send every due-soon and overdue reminder not sent yet; commit after each. Returns
    how many were sent and how many failed (those are retried next round)."""
    today = today or local_today()
    due_soon_days = int(current_app.config["ACTION_DUE_SOON_DAYS"])
    horizon = today + timedelta(days=due_soon_days)
    actions = db.session.scalars(
        select(ActionItem)
        .where(ActionItem.status.in_(PENDING_ACTION_STATUSES), ActionItem.deadline <= horizon)
        .order_by(ActionItem.deadline, ActionItem.id)
    ).all()
    sent = failed = 0
    for action in actions:
        kind = _kind(action, today, due_soon_days)
        owner = db.session.get(User, action.owner_id)
        if kind is None or owner is None or not owner.active:
            continue
        reminder = ActionReminder(action_id=action.id, kind=kind, recipient=owner.email)
        try:
            db.session.add(reminder)
            db.session.commit()
        except IntegrityError:  # sent already (or by another process right now)
            db.session.rollback()
            continue
        try:
            send_mail(_message(action, owner, kind, today))
        except OutboundError as exc:
            # A mail server that is down is an operating condition, not a bug: one line.
            current_app.logger.log(
                failure_log_level(exc),
                "reminder for action %s not sent (next round retries): %s",
                action.id,
                exc,
            )
            db.session.delete(reminder)
            db.session.commit()
            failed += 1
            continue
        sent += 1
    return ReminderReport(sent, failed)
