"""Operations on root-cause cases, root causes, call-backs and 5 Why chains.

The web views, the CLI and the ``response_analysed`` receiver all call these.
They change state and flush; the caller commits (one commit per request or
command) or rolls back when one raises :class:`CaseError`, whose message is
meant for the user.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Select, or_, select
from sqlalchemy.exc import IntegrityError

from analysis.text.problems import ProblemType
from improvement.audit.services import record_event, snapshot
from survey_app.extensions import db
from survey_app.models import Channel, Customer, Ticket, User
from survey_app.routing import whole_number
from survey_app.search import contains_text
from survey_app.surveys.models import SurveyResponse
from survey_app.types import utcnow

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
    RootCause,
    RootCauseStatus,
    WhyStep,
)
from .rules import LowFeedbackRule

E = TypeVar("E", bound=enum.Enum)

DEFAULT_FISHBONE_CATEGORIES = (
    "people",
    "process",
    "technology",
    "management",
    "environment",
    "measurement",
)
DEFAULT_CALLBACK_DAYS = 7
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
    case, created = open_case(
        ticket=ticket, response=response, origin=CaseOrigin.AUTO, trigger="; ".join(reasons)
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
    trigger = "; ".join(["opened by hand", *reasons])
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


def _enum_or_none(enum_cls: type[E], value: object, message: str) -> E | None:
    """``value`` as a member of ``enum_cls``; None for empty; :class:`CaseError` if unknown."""
    if value is None or value == "":
        return None
    try:
        return enum_cls(value)
    except ValueError:
        raise CaseError(message) from None


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
    problem = _enum_or_none(ProblemType, problem_type, _("Unknown problem type."))
    channel = _enum_or_none(Channel, touchpoint, _("Unknown touchpoint."))
    step = _enum_or_none(ProcessStep, process_step, _("Unknown process step."))
    party = _enum_or_none(ResponsibleParty, responsible_party, _("Unknown responsible party."))
    new_status = _enum_or_none(CaseStatus, status, _("Unknown case status."))
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


def _start_work(case: FeedbackCase) -> None:
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
    result = _enum_or_none(CallBackOutcome, outcome, _("Unknown call-back outcome."))
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
    _start_work(case)
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


# --- root causes -----------------------------------------------------------------------------

_THEME_SEPARATORS = re.compile(r"[,，、;；\n]+")


def parse_themes(text: str | Iterable[str] | None) -> list[str]:
    """Themes from a comma-separated string (or a list): trimmed, lower-case, de-duplicated.

    Refuses more than 20 themes or one longer than 40 characters.
    """
    parts = _THEME_SEPARATORS.split(text) if isinstance(text, str) else list(text or ())
    themes = list(dict.fromkeys(p.strip().lower() for p in parts if p and p.strip()))
    if len(themes) > MAX_THEMES:
        raise CaseError(_("At most %(n)s themes.", n=MAX_THEMES))
    if any(len(theme) > MAX_THEME_LENGTH for theme in themes):
        raise CaseError(_("A theme is longer than %(n)s characters.", n=MAX_THEME_LENGTH))
    return themes


def _check_root_cause_text(title: str, description: str) -> tuple[str, str]:
    title, description = (title or "").strip(), (description or "").strip()
    if not title:
        raise CaseError(_("A root cause needs a title."))
    if len(title) > MAX_TITLE:
        raise CaseError(_("The title is longer than %(n)s characters.", n=MAX_TITLE))
    if len(description) > MAX_DESCRIPTION:
        raise CaseError(_("The description is longer than %(n)s characters.", n=MAX_DESCRIPTION))
    return title, description


def create_root_cause(
    title: str,
    *,
    description: str = "",
    problem_type: str | None = None,
    themes: str | Iterable[str] | None = None,
    user: User | None = None,
) -> RootCause:
    """Create an open root cause; flush and return it. Refuses an empty or too long title."""
    title, description = _check_root_cause_text(title, description)
    problem = _enum_or_none(ProblemType, problem_type, _("Unknown problem type."))
    root_cause = RootCause(
        title=title,
        description=description,
        problem_type=problem.value if problem is not None else None,
        themes=parse_themes(themes),
        status=RootCauseStatus.OPEN,
        created_by_id=user.id if user is not None else None,
    )
    db.session.add(root_cause)
    db.session.flush()
    record_event(
        user,
        "root_cause",
        root_cause.id,
        "create",
        None,
        snapshot(root_cause, ROOT_CAUSE_AUDIT_FIELDS),
    )
    return root_cause


def update_root_cause(
    root_cause: RootCause,
    *,
    title: str,
    description: str,
    problem_type: str | None,
    themes: str | Iterable[str] | None,
    status: RootCauseStatus | str,
    user: User | None = None,
) -> RootCause:
    """Edit a root cause; flush; audit what ``user`` changed. Refuses the same bad input as
    :func:`create_root_cause`."""
    title, description = _check_root_cause_text(title, description)
    problem = _enum_or_none(ProblemType, problem_type, _("Unknown problem type."))
    new_status = _enum_or_none(RootCauseStatus, status, _("Unknown root-cause status."))
    if new_status is None:
        raise CaseError(_("Unknown root-cause status."))
    new_themes = parse_themes(themes)
    before = snapshot(root_cause, ROOT_CAUSE_AUDIT_FIELDS)
    root_cause.title, root_cause.description = title, description
    root_cause.problem_type = problem.value if problem is not None else None
    root_cause.themes = new_themes
    root_cause.status = new_status
    db.session.flush()
    record_event(
        user,
        "root_cause",
        root_cause.id,
        "update",
        before,
        snapshot(root_cause, ROOT_CAUSE_AUDIT_FIELDS),
    )
    return root_cause


def linkable_root_causes() -> list[RootCause]:
    """Root causes new feedback may be linked to (open or confirmed), newest first."""
    return list(
        db.session.scalars(
            select(RootCause)
            .where(RootCause.status.in_(LINKABLE_ROOT_CAUSE_STATUSES))
            .order_by(RootCause.id.desc())
        )
    )


def link_case(
    case: FeedbackCase, root_cause: RootCause | None, user: User | None = None
) -> FeedbackCase:
    """Point ``case`` at ``root_cause`` (None unlinks); flush; audit it as ``user``'s change.

    Refuses a root cause that is resolved or rejected: new feedback on a fixed
    cause is a new root cause (or the old one reopened first).
    """
    if root_cause is not None and root_cause.status not in LINKABLE_ROOT_CAUSE_STATUSES:
        raise CaseError(
            _(
                "Root cause #%(id)s is %(status)s; reopen it before linking feedback to it.",
                id=root_cause.id,
                status=root_cause.status.value,
            )  # fmt: skip
        )
    before = snapshot(case, CASE_AUDIT_FIELDS)
    case.root_cause = root_cause
    case.linked_at = utcnow() if root_cause is not None else None
    if root_cause is not None:
        _start_work(case)
    db.session.flush()
    record_event(user, "case", case.id, "link", before, snapshot(case, CASE_AUDIT_FIELDS))
    return case


def create_root_cause_for_case(
    case: FeedbackCase, title: str, *, description: str = "", user: User | None = None
) -> RootCause:
    """Create a root cause from a case (its problem type and keywords) and link the case."""
    keywords = case.response.keywords if case.response is not None else None
    root_cause = create_root_cause(
        title,
        description=description,
        problem_type=case.problem_type,
        themes=(keywords or [])[:MAX_THEMES],
        user=user,
    )
    link_case(case, root_cause, user)
    return root_cause


@dataclass(frozen=True)
class Suggestion:
    """An existing root cause that shares themes with a feedback item."""

    root_cause: RootCause
    #: The item's keywords the root cause shares, most mentioned first.
    shared: tuple[str, ...]
    #: How often the shared themes occur among the root cause's linked feedback.
    mentions: int
    same_problem_type: bool
    linked: int


def root_cause_themes(root_cause_ids: Sequence[int]) -> dict[int, Counter[str]]:
    """Per root cause: how many linked feedback items carry each keyword, plus its own themes."""
    tallies: dict[int, Counter[str]] = {rc_id: Counter() for rc_id in root_cause_ids}
    if not root_cause_ids:
        return tallies
    rows = db.session.execute(
        select(FeedbackCase.root_cause_id, SurveyResponse.keywords)
        .join(SurveyResponse, SurveyResponse.id == FeedbackCase.response_id)
        .where(FeedbackCase.root_cause_id.in_(root_cause_ids))
    )
    for rc_id, keywords in rows:
        if rc_id is None:  # excluded by the query; narrows the type
            continue
        tallies[rc_id].update(dict.fromkeys(keywords or (), 1))
    return tallies


def suggest_root_causes(
    keywords: Iterable[str] | None,
    *,
    problem_type: str | None = None,
    exclude_id: int | None = None,
    limit: int = 5,
) -> list[Suggestion]:
    """Open or confirmed root causes sharing themes with ``keywords``, best first.

    A root cause's themes are the analyst's tags plus the keywords of its
    linked feedback. Ranked by the number of shared themes, then how often
    those themes occur in its feedback, then a matching problem type, then
    the number of linked items; root causes sharing nothing are left out.
    """
    wanted = {k.strip().lower() for k in keywords or () if k and k.strip()}
    if not wanted or limit <= 0:
        return []
    candidates = db.session.scalars(
        select(RootCause).where(RootCause.status.in_(LINKABLE_ROOT_CAUSE_STATUSES))
    ).all()
    candidates = [rc for rc in candidates if rc.id != exclude_id]
    tallies = root_cause_themes([rc.id for rc in candidates])
    linked_counts: dict[int | None, int] = dict(
        db.session.execute(
            select(FeedbackCase.root_cause_id, db.func.count())
            .where(FeedbackCase.root_cause_id.in_([rc.id for rc in candidates]))
            .group_by(FeedbackCase.root_cause_id)
        ).all()
    )
    suggestions = []
    for rc in candidates:
        tally = tallies[rc.id]
        themes = set(tally) | {t.lower() for t in rc.themes or ()}
        shared = wanted & themes
        if not shared:
            continue
        suggestions.append(
            Suggestion(
                root_cause=rc,
                shared=tuple(sorted(shared, key=lambda k: (-tally[k], k))),
                mentions=sum(tally[k] for k in shared),
                same_problem_type=problem_type is not None and rc.problem_type == problem_type,
                linked=linked_counts.get(rc.id, 0),
            )
        )
    suggestions.sort(
        key=lambda s: (
            -len(s.shared),
            -s.mentions,
            not s.same_problem_type,
            -s.linked,
            s.root_cause.id,
        )
    )
    return suggestions[:limit]


def suggestions_for_case(case: FeedbackCase, limit: int = 5) -> list[Suggestion]:
    """:func:`suggest_root_causes` for a case's feedback keywords (none for a ticket-only case)."""
    keywords = case.response.keywords if case.response is not None else None
    return suggest_root_causes(
        keywords, problem_type=case.problem_type, exclude_id=case.root_cause_id, limit=limit
    )


# --- 5 Why chains ----------------------------------------------------------------------------


def _check_why(statement: str, category: str) -> tuple[str, str]:
    statement = (statement or "").strip()
    if not statement:
        raise CaseError(_("A why needs a statement."))
    if len(statement) > MAX_STATEMENT:
        raise CaseError(_("The statement is longer than %(n)s characters.", n=MAX_STATEMENT))
    if category not in fishbone_categories():
        raise CaseError(_("Unknown fishbone category."))
    return statement, category


def why_chain(root_cause_id: int) -> list[str]:
    """The 5 Why chain as the audit trail records it: ``"1. [category] statement"``."""
    rows = db.session.execute(
        select(WhyStep.position, WhyStep.category, WhyStep.statement)
        .where(WhyStep.root_cause_id == root_cause_id)
        .order_by(WhyStep.position)
    )
    return [f"{position}. [{category}] {statement}" for position, category, statement in rows]


def _record_chain_change(
    user: User | None, root_cause_id: int, action: str, before: list[str]
) -> None:
    """One audit event on the root cause: its whole chain before and after (flushed)."""
    db.session.flush()
    after = why_chain(root_cause_id)
    record_event(user, "root_cause", root_cause_id, action, {"whys": before}, {"whys": after})


def add_why(root_cause: RootCause, statement: str, category: str, user: User | None) -> WhyStep:
    """Append a why to the root cause's chain (next position); flush and return it."""
    statement, category = _check_why(statement, category)
    before = why_chain(root_cause.id)
    last = db.session.scalar(
        select(db.func.max(WhyStep.position)).where(WhyStep.root_cause_id == root_cause.id)
    )
    why = WhyStep(
        root_cause_id=root_cause.id,
        position=(last or 0) + 1,
        statement=statement,
        category=category,
        created_by_id=user.id if user is not None else None,
    )
    db.session.add(why)
    _record_chain_change(user, root_cause.id, "why_add", before)
    db.session.expire(root_cause, ["whys"])
    return why


def update_why(why: WhyStep, statement: str, category: str, user: User | None = None) -> WhyStep:
    """Change a why's statement and category; flush."""
    statement, category = _check_why(statement, category)
    before = why_chain(why.root_cause_id)
    why.statement, why.category = statement, category
    _record_chain_change(user, why.root_cause_id, "why_edit", before)
    return why


def move_why(why: WhyStep, direction: str, user: User | None = None) -> WhyStep:
    """Swap a why with its neighbour ("up" or "down"); at either end nothing moves."""
    if direction not in ("up", "down"):
        raise CaseError(_("Move up or down."))
    before = why_chain(why.root_cause_id)
    neighbour_position = why.position - 1 if direction == "up" else why.position + 1
    neighbour = db.session.scalar(
        select(WhyStep).where(
            WhyStep.root_cause_id == why.root_cause_id, WhyStep.position == neighbour_position
        )
    )
    if neighbour is None:
        return why
    # Through a free position, so the unique (root cause, position) holds at every step.
    old = why.position
    why.position = 0
    db.session.flush()
    neighbour.position = old
    db.session.flush()
    why.position = neighbour_position
    _record_chain_change(user, why.root_cause_id, "why_move", before)
    db.session.expire(why.root_cause, ["whys"])
    return why


def delete_why(why: WhyStep, user: User | None = None) -> None:
    """Remove a why and close the gap in the chain's numbering; flush."""
    root_cause = why.root_cause
    position = why.position
    before = why_chain(root_cause.id)
    db.session.delete(why)
    db.session.flush()
    later = db.session.scalars(
        select(WhyStep)
        .where(WhyStep.root_cause_id == root_cause.id, WhyStep.position > position)
        .order_by(WhyStep.position)
    ).all()
    for step in later:  # one at a time, lowest first: each moves into a free slot
        step.position -= 1
        db.session.flush()
    _record_chain_change(user, root_cause.id, "why_delete", before)
    db.session.expire(root_cause, ["whys"])


# --- the triage queue ------------------------------------------------------------------------

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
