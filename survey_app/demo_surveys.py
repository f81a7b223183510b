"""Survey history for the demo: who was asked, who answered, and what they said.

Scores follow the service the customer got: a first response over its SLA (on
the SLA's clock: working minutes for P3/P4, so a customer who wrote at night
and was answered the next morning is not counted late), a second contact or a
reopen lowers them, as it does in real data. Answers go
through :func:`submit_response`, the operation behind the survey page.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .demo_clock import DemoClock
from .demo_comments import TicketStory, demo_comment
from .extensions import db
from .models import Ticket
from .surveys.models import (
    Invitation,
    InvitationPolicy,
    InvitationStatus,
    SkipReason,
    TemplateVersion,
)
from .surveys.policy import current_policy
from .surveys.responses import submit_response
from .surveys.versions import ensure_default_template, published_version
from .types import utcnow

#: Seed first-response limits (minutes) per priority, from PRODUCT.md.
FIRST_RESPONSE_SLA = {"P1": 15, "P2": 30, "P3": 120, "P4": 240}
#: The priorities whose seed SLA counts working hours only (the others count every minute).
WORKING_HOURS_PRIORITIES = frozenset({"P3", "P4"})


def _clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))


def first_response_minutes(ticket: Ticket, clock: DemoClock) -> float | None:
    """Minutes from creation to first response on the seed SLA's clock; None if unanswered."""
    if ticket.first_response_at is None:
        return None
    if ticket.priority.value in WORKING_HOURS_PRIORITIES:
        return clock.working_minutes(ticket.created_at, ticket.first_response_at)
    return (ticket.first_response_at - ticket.created_at).total_seconds() / 60


def demo_answers(
    ticket: Ticket, language: str, rng: random.Random, clock: DemoClock | None = None
) -> dict[str, int | str | None]:
    """Plausible answers for ``ticket``: worse service, lower scores."""
    mood = 4.4
    waited = first_response_minutes(ticket, clock or DemoClock())
    if waited is not None and waited > FIRST_RESPONSE_SLA[ticket.priority.value]:
        mood -= 1.3
    if ticket.contact_count > 1:
        mood -= 0.6 * (ticket.contact_count - 1)
    if ticket.reopen_count:
        mood -= 1.0
    overall = _clamp(rng.gauss(mood, 0.8), 1, 5)
    answers: dict[str, int | str | None] = {"csat_overall": overall}
    for key in ("csat_speed", "csat_professionalism", "csat_attitude", "csat_effectiveness"):
        answers[key] = _clamp(rng.gauss(overall, 0.7), 1, 5) if rng.random() < 0.85 else None
    answers["nps"] = (
        _clamp(rng.gauss(overall * 2.2 - 0.5, 1.3), 0, 10) if rng.random() < 0.9 else None
    )
    answers["ces"] = _clamp(rng.gauss(overall * 1.35, 0.9), 1, 7) if rng.random() < 0.8 else None
    if rng.random() < 0.6:
        story = TicketStory(
            waited_too_long=waited is not None
            and waited > FIRST_RESPONSE_SLA[ticket.priority.value],
            contacts=ticket.contact_count,
            reopened=bool(ticket.reopen_count),
        )
        answers["comment"] = demo_comment(story, overall, language, rng)
    return answers


def seed_demo_surveys(seed: int = 20261122, clock: DemoClock | None = None) -> int:
    """Give every demo ticket without a survey decision one; return how many were answered.

    ``clock`` (default: :class:`DemoClock`'s defaults) says when a first response was late.
    """
    template = ensure_default_template()
    version = published_version(template)
    assert version is not None
    policy = current_policy()
    tickets = db.session.scalars(
        select(Ticket)
        .options(selectinload(Ticket.events), selectinload(Ticket.customer))
        .outerjoin(Invitation, Invitation.ticket_id == Ticket.id)
        .where(Ticket.source == "demo", Invitation.id.is_(None))
        .order_by(Ticket.closed_at)
    ).all()
    # submit_response commits per answer; expiring thousands of loaded tickets each
    # time would make seeding quadratic.
    session = db.session()
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        return _seed(tickets, version, policy, seed, clock or DemoClock())
    finally:
        session.expire_on_commit = expire_on_commit


def _seed(
    tickets: Sequence[Ticket],
    version: TemplateVersion,
    policy: InvitationPolicy,
    seed: int,
    clock: DemoClock,
) -> int:
    answered = 0
    now = utcnow()
    last_sent: dict[int, datetime] = {}
    for ticket in tickets:
        rng = random.Random(f"{seed}:{ticket.external_id}")
        close_event = ticket.events[-1]
        assert ticket.closed_at is not None  # only closed tickets are selected
        send_at = ticket.closed_at + timedelta(minutes=policy.delay_minutes)
        invitation = Invitation(
            ticket=ticket,
            customer=ticket.customer,
            close_event_id=close_event.id,
            template_version=version,
            nonce=secrets.token_urlsafe(32),
            language=ticket.customer.language,
            send_after=send_at,
            status=InvitationStatus.SENT,
        )
        previous = last_sent.get(ticket.customer_id)
        if previous is not None and send_at - previous < timedelta(days=policy.fatigue_days):
            invitation.status = InvitationStatus.SKIPPED
            invitation.skip_reason = SkipReason.FATIGUE
        else:
            last_sent[ticket.customer_id] = send_at
            invitation.sent_at = send_at
            invitation.attempts = 1
            invitation.expires_at = send_at + timedelta(days=policy.link_valid_days)
        db.session.add(invitation)
        db.session.flush()
        if invitation.status is InvitationStatus.SENT and rng.random() < 0.45:
            submitted = send_at + timedelta(minutes=rng.randrange(5, 3 * 24 * 60))
            if submitted > now:
                # Not answered yet: one of the open links `closedloop demo` prints.
                continue
            submit_response(
                invitation,
                demo_answers(ticket, invitation.language, rng, clock),
                invitation.language,
                submitted_at=submitted,
            )
            answered += 1
    db.session.commit()
    return answered
