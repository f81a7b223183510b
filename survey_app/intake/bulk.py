"""Applying many ticket events at once: the bulk form of ``apply_ticket_event`` (file imports).

A batch of events gets the outcomes and leaves the rows that applying them one
by one with :func:`~.services.apply_ticket_event` would (``tests/test_import_bulk.py``
compares the two), with a few queries instead of a dozen per event: the
customers, tickets and idempotency keys the batch touches are loaded with one
query each (the keys bound as one value: :func:`~..database.in_values`), every
event is decided in Python in order (a later event sees what an earlier one did),
then everything is written in bulk: new rows numbered beforehand
(:func:`~..database.reserve_ids`, so nothing is read back) and inserted with
:func:`~..database.insert_rows`, changed rows updated with
:func:`~..database.update_rows`. The SLA facts follow through
:data:`~.signals.tickets_changed` (with the values written, so they are not read
back), the survey invitations through :func:`~..surveys.scheduling.schedule_invitations`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import select, text

from .. import running_app
from ..database import JSONText, in_values, insert_rows, reserve_ids, update_rows
from ..extensions import db
from ..models import Customer, EventType, Ticket, TicketEvent
from ..surveys.scheduling import CloseToInvite, schedule_invitations
from ..types import utcnow
from .schemas import CustomerIn, TicketEventIn
from .services import (
    CUSTOMER_COLUMNS,
    TICKET_COLUMNS,
    CustomerRecord,
    Outcome,
    TicketRecord,
    merge_customer,
    update_ticket,
)
from .signals import ChangedTicket, tickets_changed

#: Values per ``IN (...)`` list (SQLite allows 32,766 parameters per statement).
IN_CHUNK = 1000

T = TypeVar("T")


class EventToApply(Protocol):
    """A validated event with its idempotency key and the payload to store."""

    @property
    def event(self) -> TicketEventIn: ...

    @property
    def idempotency_key(self) -> str: ...

    @property
    def payload(self) -> dict[str, Any]: ...


def apply_ticket_events(
    events: Sequence[EventToApply], *, origin: str, invite: bool = True
) -> list[Outcome]:
    """Apply ``events`` in order, as :func:`~.services.apply_ticket_event` would one by one.

    Returns each event's outcome. Flushes; the caller commits (one transaction
    for the batch). On SQLite call :func:`~..database.write_transaction` first.
    Raises :class:`~sqlalchemy.exc.IntegrityError` when a concurrent writer
    added one of the batch's customers, tickets or keys meanwhile: roll back
    and apply the events one by one, which handles that race. Refuses
    (``ValueError``) a ``reopened`` event (it cancels invitations, which only
    the one-by-one path does); a file import carries ``closed`` events.
    """
    if any(item.event.event == EventType.REOPENED for item in events):
        raise ValueError("reopened events are applied one by one (apply_ticket_event)")
    outcomes: list[Outcome] = []
    while len(outcomes) < len(events):
        batch = _Batch(events[len(outcomes) :], origin=origin, invite=invite)
        outcomes.extend(batch.decide())
        batch.write()
    return outcomes


@dataclasses.dataclass(eq=False)
class _EventRecord:
    ticket: TicketRecord
    event: EventType
    key: str
    occurred_at: datetime
    applied: bool
    #: The event as given (its payload is read only when it is stored or compared).
    item: EventToApply
    id: int | None = None

    @property
    def stored_payload(self) -> dict[str, Any] | JSONText:
        """The payload to store: its JSON text if the event came with it serialised."""
        return getattr(self.item, "payload_json", None) or self.item.payload


@dataclasses.dataclass(frozen=True)
class _Close:
    record: _EventRecord
    ticket: TicketRecord
    customer: CustomerRecord
    closed_at: datetime
    language: str


class _Batch:
    """Events decided against the rows loaded for them, then written together."""

    def __init__(self, events: Sequence[EventToApply], *, origin: str, invite: bool) -> None:
        self.events = events
        self.origin = origin
        self.invite = invite
        self.now = utcnow()
        self.customers: dict[tuple[str, str], CustomerRecord] = {}
        self.tickets: dict[tuple[str, str], TicketRecord] = {}
        #: Loaded rows and their values as loaded, to write only what changed.
        self.loaded_customers: dict[CustomerRecord, dict[str, Any]] = {}
        self.loaded_tickets: dict[TicketRecord, dict[str, Any]] = {}
        self.new_customers: list[CustomerRecord] = []
        self.new_tickets: list[TicketRecord] = []
        #: Stored payload per idempotency key: in the database, or the event recorded by this
        #: batch (whose payload is read only if another event has its key).
        self.seen: dict[str, dict[str, Any] | EventToApply] = {}
        self.records: list[_EventRecord] = []
        self.closes: list[_Close] = []
        #: Tickets an applied event changed (an ordered set), and their customers.
        self.changed: dict[TicketRecord, None] = {}
        self.measured_customers: set[CustomerRecord] = set()
        self._load()

    def _load(self) -> None:
        """Load the batch's rows. On PostgreSQL with plans made for the values at hand:
        psycopg prepares a statement run five times, and a generic plan made while the
        tables were empty scans them whole. Only for these queries: the roll-up
        triggers' statements, planned again for every row, would cost far more."""
        postgres = db.session.get_bind().dialect.name == "postgresql"
        if postgres:
            db.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        self._load_rows()
        if postgres:  # (after a failure the rollback ends the SET LOCAL)
            db.session.execute(text("RESET plan_cache_mode"))

    def _load_rows(self) -> None:
        customer_keys: dict[str, set[str]] = {}
        ticket_keys: dict[str, set[str]] = {}
        for item in self.events:
            source = item.event.ticket.source
            customer_keys.setdefault(source, set()).add(item.event.customer.identity())
            ticket_keys.setdefault(source, set()).add(item.event.ticket.external_id)
        # Customers before tickets, the order apply_ticket_event writes them in; the rows
        # stay locked (PostgreSQL) until the batch commits, so no concurrent change is lost.
        for source, identities in customer_keys.items():
            for chunk in _chunks(sorted(identities)):
                for row in db.session.execute(
                    select(*_CUSTOMER_LOAD)
                    .where(Customer.source == source, in_values(Customer.external_id, chunk))
                    .order_by(Customer.id)
                    .with_for_update()
                ):
                    self._loaded_customer(source, row._asdict())
        by_id = {customer.id: customer for customer in self.customers.values()}
        for source, external_ids in ticket_keys.items():
            for chunk in _chunks(sorted(external_ids)):
                rows = db.session.execute(
                    select(*_TICKET_LOAD)
                    .where(Ticket.source == source, in_values(Ticket.external_id, chunk))
                    .order_by(Ticket.id)
                    .with_for_update()
                ).all()
                missing = {row.customer_id for row in rows} - by_id.keys()
                for chunk_ids in _chunks(sorted(missing)):
                    for row in db.session.execute(
                        select(Customer.source, *_CUSTOMER_LOAD).where(
                            in_values(Customer.id, chunk_ids)
                        )
                    ):
                        values = row._asdict()
                        customer = self._loaded_customer(values.pop("source"), values)
                        by_id[customer.id] = customer
                for row in rows:
                    values = row._asdict()
                    customer = by_id[values.pop("customer_id")]
                    ticket = TicketRecord(source=source, customer=customer, **values)
                    self.tickets[source, ticket.external_id] = ticket
                    self.loaded_tickets[ticket] = ticket.values()
        keys = sorted({item.idempotency_key for item in self.events})
        for chunk in _chunks(keys):
            for key, payload in db.session.execute(
                select(TicketEvent.idempotency_key, TicketEvent.payload).where(
                    in_values(TicketEvent.idempotency_key, chunk)
                )
            ):
                self.seen[key] = payload

    def _loaded_customer(self, source: str, values: dict[str, Any]) -> CustomerRecord:
        customer = self.customers.get((source, values["external_id"]))
        if customer is None:
            customer = CustomerRecord(source=source, **values)
            self.customers[source, customer.external_id] = customer
            self.loaded_customers[customer] = customer.values()
        return customer

    def decide(self) -> list[Outcome]:
        """Decide the events in order; return the outcomes of those decided.

        Stops before an event that changes the tier of a customer whose ticket
        this batch has changed: one by one, that ticket's SLA facts were
        measured with the tier it had then, so they are measured before it
        changes (the next batch takes the event).
        """
        outcomes: list[Outcome] = []
        for item in self.events:
            stored = self.seen.get(item.idempotency_key)
            if stored is not None:
                payload = stored if isinstance(stored, dict) else stored.payload
                outcomes.append(Outcome.DUPLICATE if payload == item.payload else Outcome.CONFLICT)
                continue
            if self._changes_measured_tier(item.event):
                break
            outcomes.append(self._apply(item))
        return outcomes

    def _changes_measured_tier(self, event: TicketEventIn) -> bool:
        data = event.customer
        if "tier" not in data.model_fields_set or not self.measured_customers:
            return False
        customer = self.customers.get((event.ticket.source, data.identity()))
        return (
            customer is not None
            and customer in self.measured_customers
            and customer.tier != data.tier
            and not self._is_stale(event)
        )

    def _is_stale(self, event: TicketEventIn) -> bool:
        ticket = self.tickets.get((event.ticket.source, event.ticket.external_id))
        return (
            ticket is not None
            and ticket.last_event_at is not None
            and event.happened_at(self.now) < ticket.last_event_at
        )

    def _apply(self, item: EventToApply) -> Outcome:
        """One event, as ``services._apply`` does it."""
        event = item.event
        occurred_at = event.happened_at(self.now)
        source = event.ticket.source
        ticket = self.tickets.get((source, event.ticket.external_id))
        if ticket is None:
            customer = self._upsert_customer(source, event.customer, creating_ticket=True)
            ticket = TicketRecord(
                source=source, external_id=event.ticket.external_id, customer=customer
            )
            update_ticket(ticket, event.ticket, event.event, creating=True)
            ticket.last_event_at = occurred_at
            self.tickets[source, ticket.external_id] = ticket
            self.new_tickets.append(ticket)
            outcome = Outcome.CREATED
        elif self._is_stale(event):
            outcome = Outcome.STALE
        else:
            ticket.customer = self._upsert_customer(source, event.customer, creating_ticket=False)
            update_ticket(ticket, event.ticket, event.event, creating=False)
            ticket.last_event_at = occurred_at
            outcome = Outcome.UPDATED
        record = _EventRecord(
            ticket=ticket,
            event=event.event,
            key=item.idempotency_key,
            occurred_at=occurred_at,
            applied=outcome is not Outcome.STALE,
            item=item,
        )
        self.records.append(record)
        self.seen[record.key] = item
        if record.applied:
            self.changed[ticket] = None
            self.measured_customers.add(ticket.customer)
            if event.event == EventType.CLOSED and self.invite:
                self.closes.append(
                    _Close(
                        record=record,
                        ticket=ticket,
                        customer=ticket.customer,
                        closed_at=ticket.closed_at or occurred_at,
                        language=ticket.customer.language,
                    )
                )
        return outcome

    def _upsert_customer(
        self, source: str, data: CustomerIn, *, creating_ticket: bool
    ) -> CustomerRecord:
        identity = data.identity()
        customer = self.customers.get((source, identity))
        if customer is None:
            customer = CustomerRecord(source=source, external_id=identity, is_new=True)
            self.customers[source, identity] = customer
            self.new_customers.append(customer)
            merge_customer(customer, data, returning=False)
        else:
            merge_customer(customer, data, returning=creating_ticket)
        return customer

    def write(self) -> None:
        """INSERT the new rows and UPDATE the changed ones, in the order of their foreign
        keys; then schedule the invitations and have the tickets measured.

        New rows get their ids before they are written (:func:`~..database.reserve_ids`),
        so nothing is read back."""
        now = self.now
        if self.new_customers:
            _give_ids(Customer, self.new_customers)
            _insert(
                Customer,
                [
                    {"id": c.id, "source": c.source, "external_id": c.external_id,
                     "created_at": now, "updated_at": now, **c.values()}
                    for c in self.new_customers
                ],
            )  # fmt: skip
        _update(
            Customer,
            [
                {"row_id": c.id, "updated_at": now, **c.values()}
                for c, loaded in self.loaded_customers.items()
                if c.values() != loaded
            ],
        )
        if self.new_tickets:
            _give_ids(Ticket, self.new_tickets)
            _insert(
                Ticket,
                [
                    {"id": t.id, "source": t.source, "external_id": t.external_id,
                     "recorded_at": now, "updated_at": now, **t.values()}
                    for t in self.new_tickets
                ],
            )  # fmt: skip
        _update(
            Ticket,
            [
                {"row_id": t.id, "updated_at": now, **t.values()}
                for t, loaded in self.loaded_tickets.items()
                if t.values() != loaded
            ],
        )
        if self.records:
            _give_ids(TicketEvent, self.records)
            _insert(
                TicketEvent,
                [
                    {"id": r.id, "ticket_id": r.ticket.id, "event": r.event,
                     "origin": self.origin, "idempotency_key": r.key,
                     "occurred_at": r.occurred_at, "received_at": now, "applied": r.applied,
                     "payload": r.stored_payload}
                    for r in self.records
                ],
            )  # fmt: skip
        if self.closes:
            schedule_invitations(
                [
                    CloseToInvite(
                        ticket_id=_id(close.ticket.id),
                        customer_id=_id(close.customer.id),
                        close_event_id=_id(close.record.id),
                        closed_at=close.closed_at,
                        language=close.language,
                    )
                    for close in self.closes
                ]
            )
        if self.changed:
            new = set(self.new_tickets)
            tickets = [
                ChangedTicket(
                    id=_id(t.id),
                    priority=_known(t.priority),
                    created_at=_known(t.created_at),
                    first_response_at=t.first_response_at,
                    resolved_at=t.resolved_at,
                    closed_at=t.closed_at,
                    tier=t.customer.tier,
                    new=t in new,
                )
                for t in self.changed
            ]
            tickets_changed.send(
                running_app(), ticket_ids=[t.id for t in tickets], tickets=tickets
            )


def _insert(model: Any, rows: list[dict[str, Any]]) -> None:
    """One executemany INSERT, COPY on PostgreSQL (no RETURNING: SQLite would then insert
    row by row)."""
    insert_rows(model.__table__, rows)


def _update(model: Any, rows: list[dict[str, Any]]) -> None:
    """UPDATE rows by id (``row_id``), setting the other keys (one statement on PostgreSQL)."""
    update_rows(model.__table__, rows)


def _give_ids(model: Any, records: Sequence[CustomerRecord | TicketRecord | _EventRecord]) -> None:
    """Number records about to be inserted (:func:`~..database.reserve_ids`)."""
    for record, new_id in zip(records, reserve_ids(model.__table__, len(records)), strict=True):
        record.id = new_id


def _id(value: int | None) -> int:
    assert value is not None, "written above"
    return value


def _known(value: T | None) -> T:
    assert value is not None, "a ticket's priority and created_at are required"
    return value


def _chunks(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _columns(model: Any, names: Iterable[str]) -> tuple[Any, ...]:
    return tuple(getattr(model, name) for name in names)


_CUSTOMER_LOAD = _columns(Customer, ("id", "external_id", *CUSTOMER_COLUMNS))
_TICKET_LOAD = _columns(Ticket, ("id", "external_id", "customer_id", *TICKET_COLUMNS))
