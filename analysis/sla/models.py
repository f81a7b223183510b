"""SLA policy rows and the SLA facts computed for every ticket."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from survey_app.extensions import Model
from survey_app.models import Priority, Tier, str_enum
from survey_app.types import UTCDateTime, utcnow


class SlaClock(enum.StrEnum):
    """How elapsed time is counted against a target."""

    #: Every minute counts (P1/P2 by default).
    ALWAYS = "24x7"
    #: Only minutes inside working hours on working days (see ``analysis.sla.calendar``).
    WORKING_HOURS = "working_hours"


class SlaPolicy(Model):
    """The first-response and resolution targets for one priority, optionally one tier.

    A row without ``customer_tier`` is the priority's base row (always present,
    see :func:`analysis.sla.services.sla_policies`); a row with a tier
    overrides it for that tier's customers (e.g. VIP faster).
    """

    __tablename__ = "sla_policy"
    __table_args__ = (UniqueConstraint("priority", "customer_tier"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    priority: Mapped[Priority] = mapped_column(str_enum(Priority, "priority"))
    customer_tier: Mapped[Tier | None] = mapped_column(str_enum(Tier, "tier"))
    first_response_minutes: Mapped[int]
    resolution_minutes: Mapped[int]
    clock: Mapped[SlaClock] = mapped_column(str_enum(SlaClock, "sla_clock"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class TicketSla(Model):
    """One ticket's times under its SLA clock and on the calendar clock, and its breach flags.

    Written in Python whenever the ticket changes (intake sends
    ``survey_app.intake.signals.ticket_changed``) and by ``closedloop metrics
    recompute-sla`` after a policy change; aggregated in SQL by the metrics.
    ``None`` means not known yet (no first response / not resolved).
    The targets are copied, so a fact says what it was measured against.
    """

    __tablename__ = "ticket_sla"
    __table_args__ = (
        Index("ix_ticket_sla_closed_frt", "closed_at", "first_response_seconds"),
        Index("ix_ticket_sla_closed_resolution", "closed_at", "resolution_seconds"),
        Index("ix_ticket_sla_closed_priority_breached", "closed_at", "priority", "breached"),
        Index("ix_ticket_sla_closed_frt_elapsed", "closed_at", "first_response_elapsed_seconds"),
        Index(
            "ix_ticket_sla_closed_resolution_elapsed", "closed_at", "resolution_elapsed_seconds"
        ),
    )

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True
    )
    #: Copied from the ticket, so the SLA and duration KPIs need no join without filters.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: The priority the ticket was measured as (the ticket's, copied like ``closed_at``).
    priority: Mapped[Priority] = mapped_column(str_enum(Priority, "priority"))
    clock: Mapped[SlaClock] = mapped_column(str_enum(SlaClock, "sla_clock"))
    first_response_target_minutes: Mapped[int]
    resolution_target_minutes: Mapped[int]
    #: created → first response (or resolution, or close), seconds on the clock.
    first_response_seconds: Mapped[int | None]
    #: created → resolution (or close), seconds on the clock.
    resolution_seconds: Mapped[int | None]
    #: The same two on the calendar clock (every second counts, whatever the policy's clock).
    first_response_elapsed_seconds: Mapped[int | None]
    resolution_elapsed_seconds: Mapped[int | None]
    response_breached: Mapped[bool | None]
    resolution_breached: Mapped[bool | None]
    #: Either target missed; None while neither is known to be missed and one is unknown.
    breached: Mapped[bool | None]
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
