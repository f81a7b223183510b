"""SLA operations: the policy (seeded with PRODUCT.md's defaults), and each ticket's SLA facts.

A ticket's first-response and resolution times are measured from ``created_at``
to ``first_response_at`` and ``resolved_at``. A ticket closed without a first
response counts its resolution (or, failing that, its close) as the first
response; one closed without ``resolved_at`` counts its close as the resolution.
Elapsed time is counted on the policy's clock: 24×7, or working hours on
working days (:class:`analysis.sla.calendar.WorkingCalendar`). A target is
breached when the elapsed time is *greater* than the target (exactly on time
is met). Both times are also stored on the calendar clock (every second counts),
whatever the policy's clock, for the ``*_elapsed`` duration KPIs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import joinedload

from survey_app.database import insert_rows
from survey_app.extensions import db
from survey_app.intake.signals import ChangedTicket
from survey_app.models import Customer, Priority, Ticket, Tier
from survey_app.types import utcnow

from .calendar import WorkingCalendar, elapsed_seconds
from .models import SlaClock, SlaPolicy, TicketSla

#: PRODUCT.md's seed table: (first response, resolution) in minutes, and the clock.
DEFAULT_POLICY: dict[Priority, tuple[int, int, SlaClock]] = {
    Priority.P1: (15, 2 * 60, SlaClock.ALWAYS),
    Priority.P2: (30, 4 * 60, SlaClock.ALWAYS),
    Priority.P3: (2 * 60, 8 * 60, SlaClock.WORKING_HOURS),
    Priority.P4: (4 * 60, 24 * 60, SlaClock.WORKING_HOURS),
}
T = TypeVar("T")

#: Largest target accepted, minutes (90 days).
MAX_TARGET_MINUTES = 90 * 24 * 60
#: Tickets per batch when recomputing every ticket.
RECOMPUTE_BATCH = 1000


class SlaPolicyError(ValueError):
    """A policy change that cannot be made; the message says why."""


def sla_policies() -> list[SlaPolicy]:
    """Every policy row, base rows first by priority; creates missing base rows with defaults.

    Flushes when it created a row (the caller commits).
    """
    rows = list(db.session.scalars(select(SlaPolicy)))
    present = {row.priority for row in rows if row.customer_tier is None}
    for priority, (response, resolution, clock) in DEFAULT_POLICY.items():
        if priority not in present:
            row = SlaPolicy(
                priority=priority,
                customer_tier=None,
                first_response_minutes=response,
                resolution_minutes=resolution,
                clock=clock,
            )
            db.session.add(row)
            rows.append(row)
    if len(present) < len(DEFAULT_POLICY):
        db.session.flush()
    order = list(Priority)
    return sorted(
        rows,
        key=lambda r: (
            order.index(r.priority),
            r.customer_tier is not None,
            r.customer_tier or "",
        ),
    )


def _check_targets(first_response_minutes: int, resolution_minutes: int) -> None:
    for value in (first_response_minutes, resolution_minutes):
        if not 1 <= value <= MAX_TARGET_MINUTES:
            raise SlaPolicyError(
                _("Targets must be from 1 to %(most)s minutes.", most=MAX_TARGET_MINUTES)
            )


def save_sla_policy(
    priority: Priority,
    customer_tier: Tier | None,
    *,
    first_response_minutes: int,
    resolution_minutes: int,
    clock: SlaClock,
) -> SlaPolicy:
    """Create or update the row for ``priority`` (and ``customer_tier``, None = every tier).

    Refuses (:class:`SlaPolicyError`) targets outside 1 minute .. 90 days. Flushes;
    existing tickets keep their facts until :func:`recompute_all` runs.
    """
    _check_targets(first_response_minutes, resolution_minutes)
    sla_policies()
    row = db.session.scalar(
        select(SlaPolicy).where(
            SlaPolicy.priority == priority,
            SlaPolicy.customer_tier.is_(None)
            if customer_tier is None
            else SlaPolicy.customer_tier == customer_tier,
        )
    )
    if row is None:
        row = SlaPolicy(priority=priority, customer_tier=customer_tier)
        db.session.add(row)
    row.first_response_minutes = first_response_minutes
    row.resolution_minutes = resolution_minutes
    row.clock = clock
    db.session.flush()
    return row


def delete_sla_override(policy_id: int) -> None:
    """Delete a per-tier override; refuses (:class:`SlaPolicyError`) a priority's base row."""
    row = db.session.get(SlaPolicy, policy_id)
    if row is None:
        raise SlaPolicyError(_("No such SLA rule."))
    if row.customer_tier is None:
        raise SlaPolicyError(_("The base rule of a priority cannot be deleted."))
    base = db.session.scalar(
        select(SlaPolicy).where(
            SlaPolicy.priority == row.priority, SlaPolicy.customer_tier.is_(None)
        )
    )
    db.session.delete(row)
    if base is not None:
        # The policy changed: the stamp tells recompute_if_stale that tickets need measuring.
        base.updated_at = utcnow()
    db.session.flush()


@dataclasses.dataclass(frozen=True)
class SlaFacts:
    """What :func:`measure` found for one ticket."""

    clock: SlaClock
    first_response_target_minutes: int
    resolution_target_minutes: int
    first_response_seconds: int | None
    resolution_seconds: int | None
    first_response_elapsed_seconds: int | None
    resolution_elapsed_seconds: int | None
    response_breached: bool | None
    resolution_breached: bool | None
    breached: bool | None


def choose_policy(
    policies: Iterable[SlaPolicy], priority: Priority, tier: Tier | None
) -> SlaPolicy | None:
    """The tier's override for ``priority`` if there is one, else the priority's base row."""
    return _chooser(policies, _row)(priority, tier)


def _row(row: SlaPolicy) -> SlaPolicy:
    return row


def _chooser(
    policies: Iterable[SlaPolicy], kept: Callable[[SlaPolicy], T]
) -> Callable[[Priority, Tier | None], T | None]:
    """:func:`choose_policy` over ``policies`` as a lookup, giving ``kept(row)`` of the row
    it chooses: the first override of a priority and tier, else the last base row."""
    chosen: dict[tuple[Priority, Tier | None], T] = {}
    for row in policies:
        if row.customer_tier is None:
            chosen[row.priority, None] = kept(row)
        else:
            chosen.setdefault((row.priority, row.customer_tier), kept(row))

    def choose(priority: Priority, tier: Tier | None) -> T | None:
        found = chosen.get((priority, tier)) if tier is not None else None
        return found if found is not None else chosen.get((priority, None))

    return choose


def measure(
    *,
    created_at: datetime,
    first_response_at: datetime | None,
    resolved_at: datetime | None,
    closed_at: datetime | None,
    policy: SlaPolicy,
    calendar: WorkingCalendar,
) -> SlaFacts:
    """Measure one ticket against ``policy`` on its clock, and on the calendar clock
    (see the module docstring)."""
    return SlaFacts(
        **_measured(created_at, first_response_at, resolved_at, closed_at, policy, calendar)
    )


class _Terms(Protocol):
    """What measuring reads of a policy: a :class:`SlaPolicy` row, or its :class:`_RowTerms`."""

    @property
    def clock(self) -> SlaClock: ...

    @property
    def first_response_minutes(self) -> int: ...

    @property
    def resolution_minutes(self) -> int: ...


@dataclasses.dataclass(frozen=True)
class _RowTerms:
    """A policy row's terms, read once for a batch of tickets: reading a policy's rows
    through the ORM for each ticket was a tenth of measuring one."""

    clock: SlaClock
    first_response_minutes: int
    resolution_minutes: int

    @classmethod
    def of(cls, row: SlaPolicy) -> _RowTerms:
        return cls(row.clock, row.first_response_minutes, row.resolution_minutes)


def _terms_chooser(
    policies: Iterable[SlaPolicy],
) -> Callable[[Priority, Tier | None], _RowTerms | None]:
    """:func:`choose_policy` over ``policies``, giving the chosen row's terms (read once)."""
    return _chooser(policies, _RowTerms.of)


def _measured(
    created_at: datetime,
    first_response_at: datetime | None,
    resolved_at: datetime | None,
    closed_at: datetime | None,
    policy: _Terms,
    calendar: WorkingCalendar,
) -> dict[str, Any]:
    """:func:`measure`'s facts as a dict (the bulk path stores them without the dataclass)."""
    working = policy.clock is SlaClock.WORKING_HOURS
    responded = first_response_at or resolved_at or closed_at
    resolved = resolved_at or closed_at
    response_elapsed = None if responded is None else elapsed_seconds(created_at, responded)
    resolution_elapsed = None if resolved is None else elapsed_seconds(created_at, resolved)
    if working:
        response = None if responded is None else calendar.working_seconds(created_at, responded)
        resolution = None if resolved is None else calendar.working_seconds(created_at, resolved)
    else:
        response, resolution = response_elapsed, resolution_elapsed
    response_breached = None if response is None else response > policy.first_response_minutes * 60
    resolution_breached = (
        None if resolution is None else resolution > policy.resolution_minutes * 60
    )
    if response_breached or resolution_breached:
        breached: bool | None = True
    elif response_breached is None or resolution_breached is None:
        breached = None
    else:
        breached = False
    return {
        "clock": policy.clock,
        "first_response_target_minutes": policy.first_response_minutes,
        "resolution_target_minutes": policy.resolution_minutes,
        "first_response_seconds": response,
        "resolution_seconds": resolution,
        "first_response_elapsed_seconds": response_elapsed,
        "resolution_elapsed_seconds": resolution_elapsed,
        "response_breached": response_breached,
        "resolution_breached": resolution_breached,
        "breached": breached,
    }


def working_calendar() -> WorkingCalendar:
    """The calendar configured for the current app (``SLA_*`` settings)."""
    return WorkingCalendar.from_config(current_app.config)


def refresh_ticket_sla(
    ticket: Ticket,
    *,
    policies: list[SlaPolicy] | None = None,
    calendar: WorkingCalendar | None = None,
    flush: bool = True,
) -> TicketSla:
    """Measure ``ticket`` and store its :class:`TicketSla` row (insert or update).

    Flushes unless ``flush`` is false (batch callers flush once).
    """
    values = _sla_values(
        ticket,
        choose_policy(
            sla_policies() if policies is None else policies,
            ticket.priority,
            ticket.customer.tier if ticket.customer is not None else None,
        ),
        working_calendar() if calendar is None else calendar,
    )
    row = db.session.get(TicketSla, ticket.id)
    if row is None:
        row = TicketSla(ticket_id=ticket.id)
        db.session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    row.computed_at = utcnow()
    if flush:
        db.session.flush()
    return row


def measure_tickets(ticket_ids: Sequence[int]) -> int:
    """The bulk form of :func:`refresh_ticket_sla`: store the SLA facts of these
    tickets, read with a few queries per thousand; return how many were measured.

    Flushes (bulk INSERT / UPDATE); the caller commits. Ids of missing tickets are
    skipped.
    """
    done = 0
    for start in range(0, len(ticket_ids), RECOMPUTE_BATCH):
        chunk = ticket_ids[start : start + RECOMPUTE_BATCH]
        tickets = db.session.execute(
            select(
                Ticket.id,
                Ticket.priority,
                Ticket.created_at,
                Ticket.first_response_at,
                Ticket.resolved_at,
                Ticket.closed_at,
                Customer.tier,
            )
            .join(Customer, Ticket.customer_id == Customer.id)
            .where(Ticket.id.in_(chunk))
        ).all()
        _store_facts(tickets, measured=None)
        done += len(tickets)
    return done


def measure_changed_tickets(tickets: Sequence[ChangedTicket]) -> int:
    """:func:`measure_tickets` from the values the file import just wrote (intake's
    :class:`~survey_app.intake.signals.ChangedTicket`), without reading the tickets
    back; only the tickets that existed before are looked up in ``ticket_sla``. Returns
    how many were measured. Flushes; the caller commits."""
    for start in range(0, len(tickets), RECOMPUTE_BATCH):
        chunk = tickets[start : start + RECOMPUTE_BATCH]
        _store_facts(chunk, measured=[t.id for t in chunk if not t.new])
    return len(tickets)


def _store_facts(tickets: Sequence[Any], *, measured: Sequence[int] | None) -> None:
    """INSERT or UPDATE the :class:`TicketSla` rows of ``tickets`` (rows with ``id``,
    ``tier``, ``priority`` and the times). ``measured``: the ids that may have a row
    already (``None``: any of them)."""
    choose, calendar, now = _terms_chooser(sla_policies()), working_calendar(), utcnow()
    candidates = [t.id for t in tickets] if measured is None else measured
    stored: set[int] = set()
    if candidates:
        stored = set(
            db.session.scalars(
                select(TicketSla.ticket_id).where(TicketSla.ticket_id.in_(candidates))
            )
        )
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for ticket in tickets:
        values = _sla_values(ticket, choose(ticket.priority, ticket.tier), calendar)
        values.update(ticket_id=ticket.id, computed_at=now)
        (updates if ticket.id in stored else inserts).append(values)
    table = cast(Table, TicketSla.__table__)
    insert_rows(table, inserts)
    if updates:
        for values in updates:
            values["measured_id"] = values.pop("ticket_id")
        db.session.execute(
            update(table).where(table.c.ticket_id == bindparam("measured_id")), updates
        )


def _sla_values(ticket: Any, policy: _Terms | None, calendar: WorkingCalendar) -> dict[str, Any]:
    """The :class:`TicketSla` columns of a ticket (a :class:`Ticket` or a row with its
    priority and times) under ``policy``, the one chosen for its priority and tier."""
    assert policy is not None, "sla_policies() always has a base row per priority"
    values = _measured(
        ticket.created_at,
        ticket.first_response_at,
        ticket.resolved_at,
        ticket.closed_at,
        policy,
        calendar,
    )
    values.update(closed_at=ticket.closed_at, priority=ticket.priority)
    return values


def policy_changed_at() -> datetime | None:
    """When the SLA policy last changed (a rule saved, or an override deleted)."""
    return db.session.scalar(select(func.max(SlaPolicy.updated_at)))


def recompute_if_stale() -> int:
    """Re-measure every ticket when the policy changed after a ticket was last measured.

    The periodic job ``recompute-sla`` (beat, the thread of ``closedloop run``,
    ``closedloop jobs run``): a policy change on the admin page is applied here,
    in the background, never in the admin's request. Returns tickets measured (0:
    nothing stale).
    """
    changed = policy_changed_at()
    stale = changed is not None and db.session.scalar(
        select(TicketSla.ticket_id).where(TicketSla.computed_at < changed).limit(1)
    )
    db.session.commit()
    return recompute_all() if stale else 0


def recompute_all() -> int:
    """Re-measure every ticket against the current policy; return how many. Commits per batch.

    Safe to run twice or while tickets arrive (each row is simply rewritten).
    """
    policies = sla_policies()
    db.session.commit()
    calendar = working_calendar()
    done = 0
    last_id = 0
    while True:
        batch = db.session.scalars(
            select(Ticket)
            .options(joinedload(Ticket.customer))
            .where(Ticket.id > last_id)
            .order_by(Ticket.id)
            .limit(RECOMPUTE_BATCH)
        ).all()
        if not batch:
            break
        # Load the batch's existing rows once, so each refresh finds its row in the session.
        db.session.scalars(
            select(TicketSla).where(TicketSla.ticket_id.in_([t.id for t in batch]))
        ).all()
        for ticket in batch:
            refresh_ticket_sla(ticket, policies=policies, calendar=calendar, flush=False)
        last_id = batch[-1].id
        done += len(batch)
        db.session.commit()
    return done
