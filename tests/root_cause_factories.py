"""Factories for the root-cause tests: answered, analysed survey responses and cases."""

from __future__ import annotations

import itertools
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import current_app

from analysis.signals import response_analysed
from survey_app.extensions import db
from survey_app.models import (
    Channel,
    Customer,
    EventType,
    Priority,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from survey_app.surveys.models import (
    Invitation,
    InvitationStatus,
    SentimentLabel,
    SurveyResponse,
)
from survey_app.surveys.versions import ensure_default_template, published_version
from survey_app.types import utcnow

_numbers = itertools.count(1)


def make_ticket(
    *,
    resolved_days_ago: float = 1,
    channel: Channel = Channel.PHONE,
    team: str = "Frontline",
    customer_name: str = "张三",
) -> Ticket:
    """A closed ticket resolved ``resolved_days_ago`` days ago, committed."""
    number = next(_numbers)
    now = utcnow()
    resolved = now - timedelta(days=resolved_days_ago)
    customer = Customer(
        source="helpdesk",
        external_id=f"C-{number}",
        name=customer_name,
        email=f"c{number}@example.com",
        phone="+86 138 0000 0000",
    )
    ticket = Ticket(
        source="helpdesk",
        external_id=f"T-{number:04d}",
        customer=customer,
        subject="Cannot sign in",
        channel=channel,
        priority=Priority.P2,
        team=team,
        agent="王芳",
        status=TicketStatus.CLOSED,
        created_at=resolved - timedelta(hours=3),
        first_response_at=resolved - timedelta(hours=2),
        resolved_at=resolved,
        closed_at=resolved + timedelta(hours=1),
    )
    db.session.add(ticket)
    db.session.commit()
    return ticket


def make_response(
    ticket: Ticket | None = None,
    *,
    submitted_at: datetime | None = None,
    **answers: Any,
) -> SurveyResponse:
    """An answered survey for ``ticket`` (a new one by default), committed.

    ``answers`` sets metric columns (nps, csat_*, ces, comment); the rest are None.
    """
    ticket = ticket or make_ticket()
    version = published_version(ensure_default_template())
    assert version is not None
    event = TicketEvent(
        ticket=ticket,
        event=EventType.CLOSED,
        origin="test",
        idempotency_key=secrets.token_hex(8),
        occurred_at=ticket.closed_at or utcnow(),
        payload={},
    )
    db.session.add(event)
    db.session.flush()
    now = utcnow()
    invitation = Invitation(
        ticket=ticket,
        customer=ticket.customer,
        close_event_id=event.id,
        template_version=version,
        nonce=secrets.token_urlsafe(32),
        language="zh_Hans",
        send_after=now,
        sent_at=now,
        status=InvitationStatus.ANSWERED,
        answered_at=now,
    )
    db.session.add(invitation)
    db.session.flush()
    response = SurveyResponse(
        invitation_id=invitation.id,
        ticket_id=ticket.id,
        customer_id=ticket.customer_id,
        template_version_id=version.id,
        submitted_at=submitted_at or now,
        language="zh_Hans",
        team=ticket.team,
        agent=ticket.agent,
        channel=ticket.channel,
        priority=ticket.priority,
        customer_tier=ticket.customer.tier,
        **answers,
    )
    db.session.add(response)
    db.session.commit()
    return response


def analyse(
    response: SurveyResponse,
    *,
    label: SentimentLabel | None = SentimentLabel.NEUTRAL,
    score: float | None = 0.5,
    keywords: list[str] | None = None,
    problem_type: str | None = None,
    send: bool = True,
) -> SurveyResponse:
    """Set the analysis columns as the analysis layer would, commit, and send the signal."""
    response.sentiment_label = label
    response.sentiment_score = score
    response.keywords = keywords or []
    response.problem_type = problem_type
    response.analysed_at = utcnow()
    db.session.commit()
    if send:
        response_analysed.send(current_app._get_current_object(), response_id=response.id)
    return response


def matrix_ids() -> dict[str, int]:
    """Ids for the role matrix: a response without a case, a case, a root cause with two whys."""
    from improvement.root_causes.cases import auto_open_case
    from improvement.root_causes.causes import create_root_cause
    from improvement.root_causes.five_whys import add_why

    spare = make_response(nps=9)
    low = make_response(nps=2)
    analyse(low, send=False)
    case = auto_open_case(low.id)
    assert case is not None
    root_cause = create_root_cause("Matrix cause")
    first = add_why(root_cause, "First why", "process", None)
    add_why(root_cause, "Second why", "people", None)
    db.session.commit()
    return {
        "response_id": spare.id,
        "case_id": case.id,
        "root_cause_id": root_cause.id,
        "why_id": first.id,
    }
