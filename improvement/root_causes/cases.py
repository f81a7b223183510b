"""Opening root-cause cases (by the low-feedback rule, a scan or by hand) and working them.

The web views, the CLI and the ``response_analysed`` receiver call these; they
flush, the caller commits (see :mod:`.common`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from analysis.text.problems import ProblemType
from improvement.audit.services import record_event, snapshot
from survey_app.extensions import db
from survey_app.models import Channel, Ticket, User
from survey_app.surveys.models import SurveyResponse
from survey_app.types import utcnow

from .common import (
    CASE_AUDIT_FIELDS,
    CASE_OPEN_FIELDS,
    CLOCK_SKEW,
    MAX_NOTE,
    CaseError,
    callback_deadline,
    current_rule,
    enum_or_none,
)
from .models import (
    OPEN_CASE_STATUSES,
    SCALE,
    CallBack,
    CallBackOutcome,
    CaseOrigin,
    CaseStatus,
    FeedbackCase,
    ProcessStep,
    ResponsibleParty,
)
from .rules import OPENED_BY_HAND, REASON_SEPARATOR

# --- opening cases ---------------------------------------------------------------------------


def _case_for_response(response_id: int) -> FeedbackCase | None:
    return db.session.scalar(select(FeedbackCase).where(FeedbackCase.response_id == response_id))


def open_case(
    *,
    ticket: Ticket,
    response: SurveyResponse | None = None,
    origin: CaseOrigin,
    opened_by: User | None = None,
    trigger: str = "",
) -> tuple[FeedbackCase, bool]:
    """Open a case for ``response`` (or for ``ticket`` alone); return ``(case, created)``.

    A response has at most one case: if it has one already, that case is
    returned with ``created`` False, also when a concurrent caller wins the
    race (the unique ``response_id`` decides). The case starts with the
    response's problem type and the ticket's channel as touchpoint, and its
    call-back deadline.
    """
    if response is not None:
        if response.ticket_id != ticket.id:
            raise CaseError(_("The survey answer does not belong to this ticket."))
        existing = _case_for_response(response.id)
        if existing is not None:
            return existing, False
    now = utcnow()
    problem = response.problem_type if response is not None else None
    case = FeedbackCase(
        response_id=response.id if response is not None else None,
        ticket_id=ticket.id,
        origin=origin,
        trigger=trigger[:200],
        status=CaseStatus.NEW,
        opened_at=now,
        opened_by_id=opened_by.id if opened_by is not None else None,
        problem_type=problem if problem in set(ProblemType) else None,
        touchpoint=response.channel if response is not None else ticket.channel,
        callback_due_at=callback_deadline(ticket, response, now),
    )
    try:
        with db.session.begin_nested():
            db.session.add(case)
    except IntegrityError:
        if response is None:
            raise
        # Another process opened it between our look and our insert.
        existing = _case_for_response(response.id)
        if existing is None:
            raise
        return existing, False
    # Opened by a person or (opened_by None) by the low-feedback rule or a scan.
    record_event(opened_by, "case", case.id, "open", None, snapshot(case, CASE_OPEN_FIELDS))
    current_app.logger.info(
        "case %s opened (%s) for ticket %s response %s",
        case.id,
        origin.value,
        ticket.id,
        case.response_id,
    )
    return case, True


def auto_open_case(response_id: int) -> FeedbackCase | None:
    """Apply the low-feedback rule to a response; return the case it opened, else None.

    None when the response is unknown, not low, or already has a case (so a
    re-analysis never opens a second one, and never reopens a dismissed one).
    """
    response = db.session.get(SurveyResponse, response_id)
    if response is None:
        return None
    reasons = current_rule().reasons(response)
    if not reasons:
        return None
    ticket = db.session.get(Ticket, response.ticket_id)
    assert ticket is not None  # a foreign key
    trigger = REASON_SEPARATOR.join(reasons)
    case, created = open_case(
        ticket=ticket, response=response, origin=CaseOrigin.AUTO, trigger=trigger
    )
    return case if created else None


@dataclass(frozen=True)
class ScanReport:
    checked: int
    opened: int


def scan_responses(batch_size: int = 500) -> ScanReport:
    """Apply the rule to every response without a case (a backfill); flushes, does not commit."""
    query = (
        select(SurveyResponse.id)
        .outerjoin(FeedbackCase, FeedbackCase.response_id == SurveyResponse.id)
        .where(FeedbackCase.id.is_(None))
        .order_by(SurveyResponse.id)
    )
    ids = list(db.session.scalars(query))
    opened = 0
    for number, response_id in enumerate(ids, start=1):
        opened += auto_open_case(response_id) is not None
        if number % batch_size == 0:
            db.session.flush()
    return ScanReport(checked=len(ids), opened=opened)


def open_case_for_response(
    response: SurveyResponse, user: User | None
) -> tuple[FeedbackCase, bool]:
    """Open a case by hand from a survey answer (or return the one it has)."""
    ticket = db.session.get(Ticket, response.ticket_id)
    assert ticket is not None
    reasons = current_rule().reasons(response)
    trigger = REASON_SEPARATOR.join([OPENED_BY_HAND, *reasons])
    return open_case(
        ticket=ticket, response=response, origin=CaseOrigin.MANUAL, opened_by=user, trigger=trigger
    )


def open_case_for_ticket(ticket: Ticket, user: User | None) -> tuple[FeedbackCase, bool]:
    """Open a case by hand from a ticket page; return ``(case, created)``.

    The ticket's newest survey answer without a case gets one. Without such an
    answer, the ticket's existing case is returned if it has one, else a case
    on the ticket alone is opened (feedback that came by phone or e-mail).
    """
    response = db.session.scalar(
        select(SurveyResponse)
        .outerjoin(FeedbackCase, FeedbackCase.response_id == SurveyResponse.id)
        .where(SurveyResponse.ticket_id == ticket.id, FeedbackCase.id.is_(None))
        .order_by(SurveyResponse.submitted_at.desc(), SurveyResponse.id.desc())
        .limit(1)
    )
    if response is not None:
        return open_case_for_response(response, user)
    existing = db.session.scalar(
        select(FeedbackCase)
        .where(FeedbackCase.ticket_id == ticket.id)
        .order_by(FeedbackCase.opened_at.desc(), FeedbackCase.id.desc())
        .limit(1)
    )
    if existing is not None:
        return existing, False
    return open_case(
        ticket=ticket, origin=CaseOrigin.MANUAL, opened_by=user, trigger="opened by hand"
    )


# --- working a case --------------------------------------------------------------------------


def classify_case(
    case: FeedbackCase,
    *,
    problem_type: str | None,
    urgency: int | None,
    reach: int | None,
    touchpoint: Channel | str | None,
    process_step: ProcessStep | str | None,
    responsible_party: ResponsibleParty | str | None,
    status: CaseStatus | str,
    user: User | None = None,
) -> FeedbackCase:
    """Set a case's classification and status; flush; audit what ``user`` changed.

    Severity becomes urgency × reach (each 1-3), so both or neither are given.
    Refuses (:class:`CaseError`, nothing changed) an unknown value, a case sent
    back to "new", and resolving a case whose problem type, urgency, reach or
    responsible party is missing.
    """
    problem = enum_or_none(ProblemType, problem_type, _("Unknown problem type."))
    channel = enum_or_none(Channel, touchpoint, _("Unknown touchpoint."))
    step = enum_or_none(ProcessStep, process_step, _("Unknown process step."))
    party = enum_or_none(ResponsibleParty, responsible_party, _("Unknown responsible party."))
    new_status = enum_or_none(CaseStatus, status, _("Unknown case status."))
    if new_status is None:
        raise CaseError(_("Unknown case status."))
    for value in (urgency, reach):
        if value is not None and value not in SCALE:
            raise CaseError(_("Urgency and reach are 1, 2 or 3."))
    if (urgency is None) != (reach is None):
        raise CaseError(
            _("Give both urgency and reach (severity is urgency × reach), or neither.")
        )
    if new_status is CaseStatus.NEW and case.status is not CaseStatus.NEW:
        raise CaseError(_("A case that has been worked on cannot go back to new."))
    if new_status is CaseStatus.RESOLVED and None in (problem, urgency, reach, party):
        raise CaseError(
            _("To resolve a case, give its problem type, urgency, reach and responsible party.")
        )
    before = snapshot(case, CASE_AUDIT_FIELDS)
    case.problem_type = problem.value if problem is not None else None
    case.urgency, case.reach = urgency, reach
    case.severity = urgency * reach if urgency is not None and reach is not None else None
    case.touchpoint = channel
    case.process_step = step
    case.responsible_party = party
    _set_status(case, new_status)
    db.session.flush()
    record_event(user, "case", case.id, "classify", before, snapshot(case, CASE_AUDIT_FIELDS))
    return case


def _set_status(case: FeedbackCase, status: CaseStatus) -> None:
    if status is case.status:
        return
    case.status = status
    case.closed_at = None if status in OPEN_CASE_STATUSES else utcnow()


def start_work(case: FeedbackCase) -> None:
    """Move a new case to "in progress": linking it or calling the customer back starts it."""
    if case.status is CaseStatus.NEW:
        _set_status(case, CaseStatus.IN_PROGRESS)


def log_call_back(
    case: FeedbackCase,
    *,
    user: User | None,
    called_at: datetime,
    outcome: CallBackOutcome | str,
    note: str = "",
) -> CallBack:
    """Record a call to the case's customer; flush and return it.

    A call that reached the customer (or in which they declined to talk) sets
    ``called_back_at`` the first time, which ends the overdue warning; a new
    case moves to "in progress". Refuses a time without a zone, more than a
    few minutes in the future or before the ticket was created, an unknown
    outcome and a note over 2,000 characters.
    """
    if called_at.tzinfo is None:
        raise CaseError(_("The call time needs a time zone."))
    if called_at > utcnow() + CLOCK_SKEW:
        raise CaseError(_("The call time is in the future."))
    if called_at < case.ticket.created_at:
        raise CaseError(_("The call time is before the ticket was created."))
    result = enum_or_none(CallBackOutcome, outcome, _("Unknown call-back outcome."))
    if result is None:
        raise CaseError(_("Unknown call-back outcome."))
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise CaseError(_("The note is longer than %(n)s characters.", n=MAX_NOTE))
    call = CallBack(
        case=case,
        called_at=called_at,
        user_id=user.id if user is not None else None,
        outcome=result,
        note=note,
    )
    db.session.add(call)
    before = snapshot(case, CASE_AUDIT_FIELDS)
    if result.completes and (case.called_back_at is None or called_at < case.called_back_at):
        case.called_back_at = called_at
    start_work(case)
    db.session.flush()
    after = snapshot(case, CASE_AUDIT_FIELDS)
    record_event(
        user,
        "case",
        case.id,
        "call_back",
        {**before, "call_back": None},
        {**after, "call_back": f"{result.value} {called_at.isoformat()}"},
    )
    return call
