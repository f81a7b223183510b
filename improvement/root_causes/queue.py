"""The triage queue: the case list's filters and search, and a ticket's cases."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Select, or_, select

from survey_app.extensions import db
from survey_app.models import Customer, Ticket
from survey_app.routing import whole_number
from survey_app.search import contains_text
from survey_app.surveys.models import SurveyResponse
from survey_app.types import utcnow

from .models import OPEN_CASE_STATUSES, CaseStatus, FeedbackCase, RootCause

#: The status filter's default: cases still being worked.
OPEN_FILTER = "open"
#: What the search box of the case list looks in (besides the case number).
CASE_SEARCH_COLUMNS = (
    Ticket.external_id,
    Customer.name,
    Customer.email,
    SurveyResponse.comment,
    FeedbackCase.trigger,
    RootCause.title,
    RootCause.description,
)


def case_queue(filters: Mapping[str, object], now: datetime | None = None) -> Select:
    """Cases matching ``filters``, the most urgent call-back first.

    ``status`` is a case status, ``open`` (new or in progress, the default) or
    empty (any); ``problem_type``, ``touchpoint``, ``sentiment``, ``team`` and
    ``root_cause_id`` match exactly; ``linked`` is ``yes`` or ``no``;
    ``overdue`` keeps cases past their call-back deadline with no call-back
    yet; ``q`` is a case number (``12`` or ``#12``) or text searched in
    :data:`CASE_SEARCH_COLUMNS` (substring, case-insensitive).
    """
    now = now or utcnow()
    query = (
        select(FeedbackCase)
        .join(FeedbackCase.ticket)
        .join(Ticket.customer)
        .outerjoin(FeedbackCase.response)
        .outerjoin(FeedbackCase.root_cause)
    )
    status = filters.get("status", OPEN_FILTER)
    if status == OPEN_FILTER:
        query = query.where(FeedbackCase.status.in_(OPEN_CASE_STATUSES))
    elif status:
        query = query.where(FeedbackCase.status == status)
    for name, column in (
        ("problem_type", FeedbackCase.problem_type),
        ("touchpoint", FeedbackCase.touchpoint),
        ("sentiment", SurveyResponse.sentiment_label),
        ("team", Ticket.team),
        ("root_cause_id", FeedbackCase.root_cause_id),
    ):
        value = filters.get(name)
        if value not in (None, ""):
            query = query.where(column == value)
    linked = filters.get("linked")
    if linked == "yes":
        query = query.where(FeedbackCase.root_cause_id.is_not(None))
    elif linked == "no":
        query = query.where(FeedbackCase.root_cause_id.is_(None))
    if filters.get("overdue"):
        query = query.where(
            FeedbackCase.called_back_at.is_(None),
            FeedbackCase.status != CaseStatus.DISMISSED,
            FeedbackCase.callback_due_at < now,
        )
    text = str(filters.get("q") or "").strip()
    if text:
        found = contains_text(text, CASE_SEARCH_COLUMNS)
        case_id = whole_number(text.removeprefix("#"))
        if case_id is not None:
            found = or_(found, FeedbackCase.id == case_id)
        query = query.where(found)
    return query.order_by(FeedbackCase.callback_due_at, FeedbackCase.id)


def cases_for_ticket(ticket_id: int) -> list[FeedbackCase]:
    """The cases of a ticket, oldest first (shown on the ticket page)."""
    return list(
        db.session.scalars(
            select(FeedbackCase)
            .where(FeedbackCase.ticket_id == ticket_id)
            .order_by(FeedbackCase.opened_at, FeedbackCase.id)
        )
    )
