"""What the root-cause operations share: their settings, limits, audit fields and error.

The operations live by area: :mod:`.cases` (opening and working a case),
:mod:`.causes` (root causes, linking, suggestions), :mod:`.five_whys` (5 Why
chains) and :mod:`.queue` (the triage queue). They change state and flush; the
caller commits (one commit per request or command) or rolls back when one
raises :class:`CaseError`, whose message is meant for the user.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import TypeVar

from flask import current_app

from survey_app.models import Ticket
from survey_app.surveys.models import SurveyResponse

from .models import RootCauseStatus
from .rules import LowFeedbackRule

E = TypeVar("E", bound=enum.Enum)

MAX_TITLE = 200
MAX_DESCRIPTION = 5000
MAX_STATEMENT = 1000
MAX_NOTE = 2000
MAX_THEMES = 20
MAX_THEME_LENGTH = 40
#: A call-back may be logged a little ahead of the server clock (a phone's clock), not more.
CLOCK_SKEW = timedelta(minutes=5)
#: Root causes that can still take new feedback (and so be suggested).
LINKABLE_ROOT_CAUSE_STATUSES = (RootCauseStatus.OPEN, RootCauseStatus.CONFIRMED)


#: Fields of a case and of a root cause whose changes go to the audit trail.
CASE_AUDIT_FIELDS = (
    "status",
    "problem_type",
    "urgency",
    "reach",
    "severity",
    "touchpoint",
    "process_step",
    "responsible_party",
    "root_cause_id",
    "called_back_at",
)
ROOT_CAUSE_AUDIT_FIELDS = ("title", "description", "problem_type", "themes", "status")
#: What the trail records of a new case: how it came, and what it starts with.
CASE_OPEN_FIELDS = ("origin", "trigger", "response_id", "ticket_id", *CASE_AUDIT_FIELDS)


class CaseError(ValueError):
    """A refused operation; the message says why, in the user's language. Nothing was changed."""


# --- configuration ---------------------------------------------------------------------------


def current_rule() -> LowFeedbackRule:
    """The low-feedback rule of the current app (``ROOT_CAUSE_RULE``, checked at start-up)."""
    return current_app.extensions["closedloop.root_cause_rule"]


def fishbone_categories() -> list[str]:
    """The configured fishbone categories (``FISHBONE_CATEGORIES``), in display order."""
    return list(current_app.config["FISHBONE_CATEGORIES"])


def callback_days() -> int:
    return int(current_app.config["CALLBACK_DAYS"])


def callback_deadline(ticket: Ticket, response: SurveyResponse | None, now: datetime) -> datetime:
    """When the customer must have been called back: ``CALLBACK_DAYS`` after resolution.

    The ticket's ``resolved_at``, else its ``closed_at``, else the survey answer's
    time, else ``now`` (a case opened on a ticket still open).
    """
    start = ticket.resolved_at or ticket.closed_at
    if start is None and response is not None:
        start = response.submitted_at
    return (start or now) + timedelta(days=callback_days())


# --- checking input --------------------------------------------------------------------------


def enum_or_none(enum_cls: type[E], value: object, message: str) -> E | None:
    """``value`` as a member of ``enum_cls``; None for empty; :class:`CaseError` if unknown."""
    if value is None or value == "":
        return None
    try:
        return enum_cls(value)
    except ValueError:
        raise CaseError(message) from None
