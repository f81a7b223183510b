"""The first-response heatmap: mean first response by local weekday × hour of ticket creation,
from the roll-ups (:mod:`analysis.metrics.rollup`) where they serve the scope, else raw."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    case,
    func,
    literal,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from analysis.metrics import Scope
from analysis.metrics.scope import offset_spans
from analysis.sla.models import TicketSla
from survey_app.extensions import db
from survey_app.models import Customer, Ticket
from survey_app.surveys.models import Invitation

#: The scales of the score distributions.

#: Sentiment labels in display order; ``pending`` = not analysed yet.
#: The CSAT dimensions whose correlation with NPS the driver analysis reports.
#: Responses per page of the drill-down list.
RESPONSES_PER_PAGE = 50


class epoch_seconds(FunctionElement[int]):  # noqa: N801  (a SQL function's name)
    """Whole seconds since 1970-01-01 UTC of a UTC timestamp column, portably."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # Stored as naive UTC text; STRFTIME('%s') reads it as UTC and truncates.
    return f"CAST(STRFTIME('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_seconds)
def _epoch_default(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"


def utc_offset_segments(scope: Scope) -> list[tuple[datetime, int]]:
    """The scope's period cut where its time zone's UTC offset changes (daylight saving):
    ``(starts, offset_seconds)`` pairs in order, the first at the period's beginning
    (:func:`analysis.metrics.scope.offset_spans`)."""
    begin, end = scope.bounds
    return [(start, minutes * 60) for start, _end, minutes in offset_spans(begin, end, scope.zone)]


def _ticket_conditions(scope: Scope) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for name, values in scope.filters().items():
        if name == "customer_tier":
            conditions.append(Customer.tier.in_(values))
        elif name == "customer_is_new":
            conditions.append(Customer.is_new.is_(values[0]))
        elif name != "template_version":  # (a join: see raw_frt_heatmap)
            conditions.append(getattr(Ticket, name).in_(values))
    return conditions


@dataclass(frozen=True)
class HeatmapCell:
    """Tickets created in one local weekday (0 = Monday) and hour, with their first-response
    times: seconds on each ticket's SLA clock (business hours) and elapsed seconds."""

    weekday: int
    hour: int
    n: int
    total_seconds: int
    total_elapsed_seconds: int = 0

    @property
    def mean_seconds(self) -> float | None:
        """Mean first response, business hours (each ticket's SLA clock)."""
        return self.total_seconds / self.n if self.n else None

    @property
    def mean_elapsed_seconds(self) -> float | None:
        """Mean first response, elapsed (every second counts)."""
        return self.total_elapsed_seconds / self.n if self.n else None


def frt_heatmap(scope: Scope) -> list[list[HeatmapCell]]:
    """Mean first-response time by local weekday × hour of ticket creation: 7 rows × 24 cells,
    from the roll-ups for the days they hold (:func:`raw_frt_heatmap` for the rest)."""
    from analysis.metrics import rollup

    plan = rollup.plan(scope, None)
    if plan is None:
        return raw_frt_heatmap(scope)
    found: dict[int, list[int]] = {}

    def add(how: int, *sums: int) -> None:
        found[how] = [a + b for a, b in zip(found.get(how, [0, 0, 0]), sums, strict=True)]

    for how, *sums in rollup.heatmap_cells(plan):
        add(how, *sums)
    for first, last in rollup.day_runs(plan.dirty):  # days written since the last refresh
        for row in raw_frt_heatmap(dataclasses.replace(scope, start=first, end=last)):
            for c in row:
                add(c.weekday * 24 + c.hour, c.n, c.total_seconds, c.total_elapsed_seconds)
    return [
        [HeatmapCell(day, hour, *found.get(day * 24 + hour, (0, 0, 0))) for hour in range(24)]
        for day in range(7)
    ]


def raw_frt_heatmap(scope: Scope) -> list[list[HeatmapCell]]:
    """Mean first-response time by local weekday × hour of ticket creation: 7 rows × 24 cells.

    Population: tickets *created* in the scope's period (local days) that have
    a first-response time (``ticket_sla.first_response_seconds``, on the
    ticket's SLA clock, and ``first_response_elapsed_seconds``), filtered like
    the ticket KPIs: a ticket invited with several of the chosen template
    versions counts once under each.

    Local weekday and hour, portably: the period is cut where the zone's
    UTC offset changes (:func:`utc_offset_segments`); in SQL each ticket's
    offset is a ``CASE`` on ``created_at`` over those few segments, its
    local hour number is h = ⌊(epoch seconds + offset) / 3600⌋ (epoch
    seconds: SQLite ``STRFTIME('%s')``, PostgreSQL ``EXTRACT(EPOCH)``), and
    since 1970-01-01 was a Thursday the hour of the week counted from
    Monday 00:00 is (h + 72) mod 168. One ``GROUP BY`` of that number.
    """
    begin, end = scope.bounds
    segments = utc_offset_segments(scope)
    offset: ColumnElement[Any] = literal(segments[-1][1], Integer())
    if len(segments) > 1:
        offset = case(
            *(
                (Ticket.created_at < starts, literal(previous, Integer()))
                for (starts, _o), (_s, previous) in zip(segments[1:], segments, strict=False)
            ),
            else_=literal(segments[-1][1], Integer()),
        )
    hour_number = (epoch_seconds(Ticket.created_at) + offset) // 3600
    hour_of_week = ((hour_number + 72) % 168).label("how")
    clause = Ticket.__table__.join(TicketSla.__table__, TicketSla.ticket_id == Ticket.id)
    if "customer_tier" in scope.filters() or "customer_is_new" in scope.filters():
        clause = clause.join(Customer.__table__, Customer.id == Ticket.customer_id)
    if scope.template_version:  # once under each chosen version it was invited with
        versions = (
            select(Invitation.ticket_id)
            .where(Invitation.template_version_id.in_(scope.template_version))
            .group_by(Invitation.ticket_id, Invitation.template_version_id)
            .subquery("versions")
        )
        clause = clause.join(versions, versions.c.ticket_id == Ticket.id)
    inner = (
        select(
            hour_of_week,
            TicketSla.first_response_seconds.label("seconds"),
            TicketSla.first_response_elapsed_seconds.label("elapsed"),
        )
        .select_from(clause)
        .where(
            Ticket.created_at >= begin,
            Ticket.created_at < end,
            TicketSla.first_response_seconds.is_not(None),
            *_ticket_conditions(scope),
        )
        .subquery("created")
    )
    found: dict[int, tuple[int, int, int]] = {}
    for how, n, total, elapsed in db.session.execute(
        select(
            inner.c.how,
            func.count(),
            func.coalesce(func.sum(inner.c.seconds), 0),
            func.coalesce(func.sum(inner.c.elapsed), 0),
        ).group_by(inner.c.how)
    ):
        found[int(how)] = (int(n), int(total), int(elapsed))
    return [
        [HeatmapCell(day, hour, *found.get(day * 24 + hour, (0, 0, 0))) for hour in range(24)]
        for day in range(7)
    ]
