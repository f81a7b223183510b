"""Applying ticket events: the one operation behind the webhook, the import and the demo."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import running_app
from ..extensions import db
from ..models import (
    Channel,
    Customer,
    EventType,
    Priority,
    Ticket,
    TicketEvent,
    TicketStatus,
    Tier,
)
from ..surveys.scheduling import cancel_open_invitations, schedule_invitation
from ..types import utcnow
from .schemas import CustomerIn, TicketEventIn, TicketIn
from .signals import ticket_changed


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    #: The same event (same idempotency key) was applied before: nothing changed.
    DUPLICATE = "duplicate"
    #: Older than what the ticket already reflects: recorded, not applied.
    STALE = "stale"
    #: The event id was seen before with another body: refused, nothing changed.
    CONFLICT = "conflict"


@dataclasses.dataclass(frozen=True)
class EventResult:
    outcome: Outcome
    ticket_id: int
    event_id: int


TICKET_FIELDS = (
    "subject", "channel", "priority", "category", "product_line", "region", "team", "agent",
    "created_at", "first_response_at", "resolved_at", "closed_at",
)  # fmt: skip
CUSTOMER_FIELDS = ("name", "email", "phone", "language", "tier")
#: What a new customer row holds for a column the event leaves out (the model's defaults).
NEW_CUSTOMER_LANGUAGE: str = Customer.__table__.c.language.default.arg
NEW_CUSTOMER_TIER: Tier = Customer.__table__.c.tier.default.arg


@dataclasses.dataclass(eq=False)
class CustomerRecord:
    """A customer row as the bulk writer holds it (:mod:`.bulk`): loaded, or new (no id yet)."""

    source: str
    external_id: str
    id: int | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    language: str = NEW_CUSTOMER_LANGUAGE
    tier: Tier = NEW_CUSTOMER_TIER
    is_new: bool = False

    def values(self) -> dict[str, Any]:
        """The columns an event can change."""
        return {name: getattr(self, name) for name in CUSTOMER_COLUMNS}


@dataclasses.dataclass(eq=False)
class TicketRecord:
    """A ticket row as the bulk writer holds it (:mod:`.bulk`): loaded, or new (no id yet)."""

    source: str
    external_id: str
    customer: CustomerRecord
    id: int | None = None
    subject: str | None = None
    channel: Channel | None = None
    priority: Priority | None = None
    category: str | None = None
    product_line: str | None = None
    region: str | None = None
    team: str | None = None
    agent: str | None = None
    status: TicketStatus | None = None
    created_at: datetime | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    reopen_count: int = 0
    contact_count: int = 1
    last_event_at: datetime | None = None

    def values(self) -> dict[str, Any]:
        """The columns an event can change (the customer as ``customer_id``)."""
        values = {name: getattr(self, name) for name in TICKET_COLUMNS}
        values["customer_id"] = self.customer.id
        return values


#: Customer columns an event can change.
CUSTOMER_COLUMNS = (*CUSTOMER_FIELDS, "is_new")
#: Ticket columns an event can change, besides ``customer_id``.
TICKET_COLUMNS = (*TICKET_FIELDS, "status", "reopen_count", "contact_count", "last_event_at")


def apply_ticket_event(
    event: TicketEventIn,
    *,
    idempotency_key: str,
    origin: str,
    payload: dict[str, Any],
    invite: bool = True,
) -> EventResult:
    """Apply one validated ticket event inside a SAVEPOINT and flush.

    Returns the outcome. A key seen before (also one racing in from a
    concurrent request, caught by the unique constraint) returns
    ``DUPLICATE`` and changes nothing, unless the key came with another body
    (the same helpdesk event id, other content), which is ``CONFLICT`` and
    changes nothing either; an event older than the ticket's last
    applied event is stored as ``STALE`` without touching the ticket. The
    caller commits.

    An applied ``closed`` event schedules a survey invitation (unless
    ``invite`` is false, as for demo history); a ``reopened`` one cancels the
    ticket's unanswered invitations.
    """
    existing = _event_by_key(idempotency_key)
    if existing is not None:
        return _seen_before(existing, payload)
    try:
        with db.session.begin_nested():
            return _apply(event, idempotency_key, origin, payload, invite)
    except IntegrityError:
        # A concurrent delivery of the same event or ticket won the race.
        existing = _event_by_key(idempotency_key)
        if existing is not None:
            return _seen_before(existing, payload)
        with db.session.begin_nested():
            return _apply(event, idempotency_key, origin, payload, invite)


def _seen_before(existing: TicketEvent, payload: dict[str, Any]) -> EventResult:
    """A repeated delivery (the same stored body) or a conflicting reuse of its key."""
    outcome = Outcome.DUPLICATE if existing.payload == payload else Outcome.CONFLICT
    return EventResult(outcome, existing.ticket_id, existing.id)


def _event_by_key(key: str) -> TicketEvent | None:
    return db.session.scalar(select(TicketEvent).where(TicketEvent.idempotency_key == key))


def _apply(
    event: TicketEventIn, key: str, origin: str, payload: dict[str, Any], invite: bool
) -> EventResult:
    occurred_at = event.happened_at(utcnow())
    source = event.ticket.source
    ticket = db.session.scalar(
        select(Ticket).where(
            Ticket.source == source, Ticket.external_id == event.ticket.external_id
        )
    )
    stale = (
        ticket is not None
        and ticket.last_event_at is not None
        and occurred_at < ticket.last_event_at
    )
    if ticket is None:
        customer = _upsert_customer(source, event.customer, creating_ticket=True)
        ticket = Ticket(
            source=source,
            external_id=event.ticket.external_id,
            customer=customer,
            reopen_count=0,
            contact_count=1,
        )
        update_ticket(ticket, event.ticket, event.event, creating=True)
        ticket.last_event_at = occurred_at
        db.session.add(ticket)
        outcome = Outcome.CREATED
    elif stale:
        outcome = Outcome.STALE
    else:
        ticket.customer = _upsert_customer(source, event.customer, creating_ticket=False)
        update_ticket(ticket, event.ticket, event.event, creating=False)
        ticket.last_event_at = occurred_at
        outcome = Outcome.UPDATED
    record = TicketEvent(
        ticket=ticket,
        event=event.event,
        origin=origin,
        idempotency_key=key,
        occurred_at=occurred_at,
        applied=outcome is not Outcome.STALE,
        payload=payload,
    )
    db.session.add(record)
    db.session.flush()
    if outcome is not Outcome.STALE:
        ticket_changed.send(running_app(), ticket=ticket)
        if event.event == EventType.REOPENED:
            cancel_open_invitations(ticket)
        elif event.event == EventType.CLOSED and invite:
            schedule_invitation(ticket, record)
    return EventResult(outcome, ticket.id, record.id)


def _upsert_customer(source: str, data: CustomerIn, *, creating_ticket: bool) -> Customer:
    identity = data.identity()
    customer = db.session.scalar(
        select(Customer).where(Customer.source == source, Customer.external_id == identity)
    )
    if customer is None:
        customer = Customer(source=source, external_id=identity, is_new=True)
        db.session.add(customer)
        merge_customer(customer, data, returning=False)
    else:
        merge_customer(customer, data, returning=creating_ticket)
    return customer


def merge_customer(
    customer: Customer | CustomerRecord, data: CustomerIn, *, returning: bool
) -> None:
    """Apply what an event says about its customer to ``customer``.

    ``returning``: a customer seen before opens another ticket, so is no longer new.
    Only what the sender actually sent overwrites what we know.
    """
    if returning:
        customer.is_new = False
    sent = data.model_fields_set
    for name in CUSTOMER_FIELDS:
        value = getattr(data, name)
        if name in sent and value is not None:
            setattr(customer, name, value.lower() if name == "email" else value)
    if data.is_new is not None:
        customer.is_new = data.is_new


def update_ticket(
    ticket: Ticket | TicketRecord, data: TicketIn, event: EventType, *, creating: bool
) -> None:
    """Apply an event's ticket fields and its effect on the status to ``ticket``."""
    sent = data.model_fields_set
    for name in TICKET_FIELDS:
        if name in sent:
            setattr(ticket, name, getattr(data, name))
    if data.contact_count is not None:
        ticket.contact_count = data.contact_count
    if event == EventType.CLOSED:
        ticket.status = TicketStatus.CLOSED
    elif event == EventType.REOPENED:
        ticket.status = TicketStatus.REOPENED
        # A reopened ticket is neither resolved nor closed until a later event says so,
        # even when the helpdesk repeats the old times in the reopen event.
        ticket.resolved_at = None
        ticket.closed_at = None
        if data.reopen_count is None:
            ticket.reopen_count = (ticket.reopen_count or 0) + 1
    elif data.status is not None:
        ticket.status = data.status
    elif creating:
        ticket.status = TicketStatus.OPEN
    if data.reopen_count is not None:
        ticket.reopen_count = data.reopen_count
