"""KPI test data: tickets (with their SLA facts), invitations and responses, via the ORM."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from analysis.sla.services import refresh_ticket_sla
from survey_app.extensions import db
from survey_app.models import (
    Channel,
    Customer,
    EventType,
    Priority,
    Ticket,
    TicketEvent,
    TicketStatus,
    Tier,
)
from survey_app.surveys.models import (
    Invitation,
    InvitationStatus,
    SkipReason,
    SurveyResponse,
    SurveyTemplate,
    TemplateVersion,
)

#: Noon in Shanghai on 2025-09-15, a day inside the test period (September 2025).
MID_SEPTEMBER = datetime(2025, 9, 15, 4, 0, tzinfo=UTC)


class KpiData:
    """Builds rows directly; every ticket gets its SLA facts like intake gives them."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        template = SurveyTemplate(name="KPI test survey")
        self.versions = [
            TemplateVersion(template=template, number=1),
            TemplateVersion(template=template, number=2),
        ]
        db.session.add(template)
        db.session.flush()

    def ticket(
        self,
        *,
        priority: str = "P1",
        channel: str = "chat",
        team: str | None = "Frontline",
        agent: str | None = "王芳",
        product_line: str | None = "云存储",
        region: str | None = "华东",
        tier: str = "standard",
        is_new: bool = False,
        created_at: datetime = MID_SEPTEMBER,
        first_response_after: timedelta | None = timedelta(minutes=10),
        resolved_after: timedelta | None = timedelta(hours=1),
        closed_after: timedelta | None = timedelta(hours=2),
        contact_count: int = 1,
        reopen_count: int = 0,
    ) -> Ticket:
        number = next(self._ids)
        customer = Customer(
            source="test", external_id=f"C{number}", tier=Tier(tier), is_new=is_new
        )
        ticket = Ticket(
            source="test",
            external_id=f"T{number}",
            customer=customer,
            channel=Channel(channel),
            priority=Priority(priority),
            team=team,
            agent=agent,
            product_line=product_line,
            region=region,
            status=TicketStatus.CLOSED if closed_after is not None else TicketStatus.OPEN,
            created_at=created_at,
            first_response_at=_after(created_at, first_response_after),
            resolved_at=_after(created_at, resolved_after),
            closed_at=_after(created_at, closed_after),
            contact_count=contact_count,
            reopen_count=reopen_count,
        )
        db.session.add(ticket)
        db.session.flush()
        refresh_ticket_sla(ticket)
        return ticket

    def invitation(
        self,
        ticket: Ticket,
        *,
        sent_at: datetime | None = None,
        answered: bool = False,
        skip_reason: str | None = None,
        created_at: datetime | None = None,
        version: int = 1,
    ) -> Invitation:
        created = created_at or ticket.closed_at or ticket.created_at
        event = TicketEvent(
            ticket=ticket,
            event=EventType.CLOSED,
            origin="test",
            idempotency_key=f"event-{next(self._ids)}",
            occurred_at=created,
            payload={},
        )
        db.session.add(event)
        db.session.flush()
        if skip_reason is not None:
            status = InvitationStatus.SKIPPED
        elif answered:
            status = InvitationStatus.ANSWERED
        else:
            status = InvitationStatus.SENT if sent_at else InvitationStatus.PENDING
        invitation = Invitation(
            ticket=ticket,
            customer=ticket.customer,
            close_event_id=event.id,
            template_version=self.versions[version - 1] if skip_reason is None else None,
            status=status,
            skip_reason=SkipReason(skip_reason) if skip_reason else None,
            nonce=f"nonce-{next(self._ids)}",
            language="zh_Hans",
            created_at=created,
            send_after=created,
            sent_at=sent_at,
            answered_at=(sent_at + timedelta(hours=1)) if answered and sent_at else None,
        )
        db.session.add(invitation)
        db.session.flush()
        return invitation

    def response(
        self,
        ticket: Ticket | None = None,
        *,
        submitted_at: datetime = MID_SEPTEMBER,
        version: int = 1,
        **scores: Any,
    ) -> SurveyResponse:
        """A response to a new invitation sent an hour before ``submitted_at``."""
        ticket = ticket or self.ticket()
        invitation = self.invitation(
            ticket, sent_at=submitted_at - timedelta(hours=1), answered=True, version=version
        )
        invitation.answered_at = submitted_at
        response = SurveyResponse(
            invitation=invitation,
            ticket_id=ticket.id,
            customer_id=ticket.customer_id,
            template_version_id=invitation.template_version_id,
            submitted_at=submitted_at,
            language="zh_Hans",
            team=ticket.team,
            agent=ticket.agent,
            channel=ticket.channel,
            priority=ticket.priority,
            product_line=ticket.product_line,
            region=ticket.region,
            customer_tier=ticket.customer.tier,
            customer_is_new=ticket.customer.is_new,
            **scores,
        )
        db.session.add(response)
        db.session.flush()
        return response


def _after(start: datetime, delta: timedelta | None) -> datetime | None:
    return None if delta is None else start + delta


TEAMS = ("Frontline", "Backline", None)
AGENTS = ("王芳", "Li Lei", None)
REGIONS = ("华东", "华南")
PRODUCTS = ("云存储", "Mail", None)


GENERATED_START = datetime(2025, 8, 25, tzinfo=UTC)


def generate(
    data: KpiData, seed: int = 7, start: datetime = GENERATED_START, count: int = 160
) -> None:
    """``count`` random tickets over 45 days from ``start``, with invitations and responses."""
    rng = random.Random(seed)
    for _ in range(count):
        created = start + timedelta(minutes=rng.randrange(0, 45 * 24 * 60))
        closed = rng.random() < 0.9
        ticket = data.ticket(
            priority=rng.choice(list(Priority)).value,
            channel=rng.choice(("chat", "phone", "email")),
            team=rng.choice(TEAMS),
            agent=rng.choice(AGENTS),
            product_line=rng.choice(PRODUCTS),
            region=rng.choice(REGIONS),
            tier=rng.choice(("vip", "standard", "standard")),
            is_new=rng.random() < 0.3,
            created_at=created,
            first_response_after=rng.choice([None, timedelta(minutes=rng.randrange(1, 600))]),
            resolved_after=timedelta(minutes=rng.randrange(600, 4000)) if closed else None,
            closed_after=timedelta(minutes=rng.randrange(4000, 5000)) if closed else None,
            contact_count=rng.choice((1, 1, 2, 3)),
            reopen_count=rng.choice((0, 0, 0, 1)),
        )
        if not closed:
            continue
        roll = rng.random()
        sent_at = ticket.closed_at + timedelta(hours=1)
        if roll < 0.15:
            data.invitation(ticket, skip_reason=rng.choice(("fatigue", "opted_out", "no_contact")))
        elif roll < 0.35:
            data.invitation(ticket, sent_at=sent_at, version=rng.choice((1, 2)))
        else:
            scores: dict[str, Any] = {
                f"csat_{d}": rng.choice((None, 1, 2, 3, 4, 5, 5))
                for d in ("overall", "speed", "professionalism", "attitude", "effectiveness")
            }
            scores["nps"] = rng.choice((None, *range(11)))
            scores["ces"] = rng.choice((None, *range(1, 8)))
            data.response(
                ticket,
                submitted_at=sent_at + timedelta(hours=rng.randrange(1, 48)),
                version=rng.choice((1, 2)),
                **scores,
            )
