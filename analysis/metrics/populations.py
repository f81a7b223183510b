"""The raw populations behind the KPIs: their rows, filters, groups and aggregate queries.

Populations and their period column: survey responses (``submitted_at``),
closed tickets (``closed_at``, with their SLA facts), invitations sent
(``sent_at``) and invitations skipped (``created_at``). Every filter and group
of a :class:`~analysis.metrics.scope.Scope` maps to a column of each
population (the ticket's values for tickets and invitations, the values kept on
the response for responses). Time buckets are local days / weeks / months
computed in Python as UTC instants and joined as a small derived table, so the
same rows fall in the same bucket on SQLite and PostgreSQL, whatever the time
zone and its daylight-saving rules. :mod:`analysis.metrics.engine` puts the
rows together into KPIs; :mod:`analysis.metrics.rollup` answers the same
queries from the daily roll-ups.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    FromClause,
    String,
    and_,
    case,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement, SQLColumnExpression

from survey_app.extensions import db
from survey_app.models import Customer, Ticket
from survey_app.surveys.models import Invitation, SentimentLabel, SurveyResponse
from survey_app.types import UTCDateTime

from ..sla.models import TicketSla
from ..text.models import ResponseAspect, ResponseKeyword
from . import indexes  # noqa: F401  (the covering indexes these queries rely on)
from .definitions import (
    ALL_KPIS,
    CSAT_DIMENSIONS,
    PERCENTILES,
    count_if,
    percentile_ranks,
    rank_sql,
    response_aggregates,
    sla_aggregates,
    ticket_aggregates,
)
from .distributions import distribution_aggregates
from .scope import Grain, Scope, time_buckets

# --- populations -------------------------------------------------------------------------------


#: The populations of comment mentions: one row per response and keyword, or response and
#: survey dimension its comment speaks of (:mod:`analysis.text.models`), in the response's period.
MENTIONS: dict[str, type[ResponseKeyword] | type[ResponseAspect]] = {
    "keywords": ResponseKeyword,
    "aspects": ResponseAspect,
}


def _ticket_versions() -> FromClause:
    """Each (ticket, template version) it was invited with."""
    return (
        select(Invitation.ticket_id, Invitation.template_version_id)
        .where(Invitation.template_version_id.is_not(None))
        .distinct()
        .subquery("ticket_versions")
    )


class Population:
    """The FROM clause, period column and dimension columns of one kind of row."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.joins: list[tuple[FromClause, ColumnElement[bool]]] = []
        self.time: SQLColumnExpression[datetime | None]
        self._joined: set[str] = set()
        self.versions: FromClause | None = None
        if kind == "responses":
            self.base: FromClause = SurveyResponse.__table__
            self.time = SurveyResponse.submitted_at
        elif kind in MENTIONS:  # a comment's keywords or aspects, with their response's values
            mentioned = MENTIONS[kind]
            self.base = mentioned.__table__.join(
                SurveyResponse.__table__, SurveyResponse.id == mentioned.response_id
            )
            self.time = SurveyResponse.submitted_at
        elif kind == "tickets":
            self.base = Ticket.__table__
            self.time = Ticket.closed_at
        elif kind == "sla":  # SLA facts: breaches and durations
            self.base = TicketSla.__table__
            self.time = TicketSla.closed_at
        elif kind == "created":  # tickets by creation, with their SLA facts (the heatmap)
            self.base = Ticket.__table__.join(
                TicketSla.__table__, TicketSla.ticket_id == Ticket.id
            )
            self.time = Ticket.created_at
        else:  # sent / skipped invitations
            self.base = Invitation.__table__
            self.time = Invitation.sent_at if kind == "sent" else Invitation.created_at

    def _join(self, name: str) -> None:
        if name in self._joined:
            return
        self._joined.add(name)
        invitations = self.kind in ("sent", "skipped")
        if name == "ticket":
            if self.kind in ("tickets", "created"):
                return
            ticket_id = Invitation.ticket_id if invitations else TicketSla.ticket_id
            self.joins.append((Ticket.__table__, Ticket.id == ticket_id))
        elif name == "customer":
            if invitations:
                self.joins.append((Customer.__table__, Customer.id == Invitation.customer_id))
            else:
                self._join("ticket")
                self.joins.append((Customer.__table__, Customer.id == Ticket.customer_id))
        elif name == "versions":
            self._join("ticket")
            self.versions = _ticket_versions()
            self.joins.append((self.versions, self.versions.c.ticket_id == Ticket.id))

    def column(self, dimension: str) -> SQLColumnExpression[Any]:
        """The column holding ``dimension`` for this population (adding the joins it needs)."""
        if self.kind == "responses" or self.kind in MENTIONS:
            if dimension == "template_version":
                return SurveyResponse.template_version_id
            return getattr(SurveyResponse, dimension)
        invitations = self.kind in ("sent", "skipped")
        if dimension == "template_version":
            if invitations:
                return Invitation.template_version_id
            self._join("versions")
            assert self.versions is not None
            return self.versions.c.template_version_id
        if dimension == "priority" and self.kind == "sla":
            return TicketSla.priority
        if dimension in ("customer_tier", "customer_is_new"):
            self._join("customer")
            return Customer.tier if dimension == "customer_tier" else Customer.is_new
        if self.kind not in ("tickets", "created"):
            self._join("ticket")
        return getattr(Ticket, dimension)

    def single_version(self) -> ColumnElement[Any]:
        """A ticket population's template version when its ticket was invited with exactly one
        (None: with none or several), one index lookup per ticket (the roll-ups' combinations)."""
        self._join("ticket")
        version = Invitation.template_version_id
        return (
            select(case((func.min(version) == func.max(version), func.min(version))))
            .where(Invitation.ticket_id == Ticket.id, version.is_not(None))
            .scalar_subquery()
        )

    def several_versions(self) -> ColumnElement[bool]:
        """A ticket population's rows whose ticket was invited with two template versions or
        more, and the join to its versions, each once, by an index lookup per ticket (no
        reading of every invitation): the roll-ups' ``"*v"`` combinations."""
        self._join("ticket")
        mine = Invitation.__table__.alias("ticket_versions")
        other = Invitation.__table__.alias("other_invitation")
        self.versions = mine
        self._joined.add("versions")
        self.joins.append(
            (mine, and_(mine.c.ticket_id == Ticket.id, mine.c.template_version_id.is_not(None)))
        )
        earlier_same = (
            select(other.c.id)
            .where(
                other.c.ticket_id == mine.c.ticket_id,
                other.c.template_version_id == mine.c.template_version_id,
                other.c.id < mine.c.id,
            )
            .exists()
        )
        another = (
            select(other.c.id)
            .where(
                other.c.ticket_id == mine.c.ticket_id,
                other.c.template_version_id.is_not(None),
                other.c.template_version_id != mine.c.template_version_id,
            )
            .exists()
        )
        return and_(~earlier_same, another)

    def from_clause(self) -> FromClause:
        clause = self.base
        for target, condition in self.joins:
            clause = clause.join(target, condition)
        return clause


def bucket_table(scope: Scope, grain: Grain) -> FromClause:
    """The period's local days / weeks / months as a derived table (label, begins, ends)."""
    rows = [
        select(
            literal(label, String()).label("label"),
            literal(begin, UTCDateTime()).label("begins"),
            literal(end, UTCDateTime()).label("ends"),
        )
        for label, begin, end in time_buckets(scope, grain)
    ]
    return union_all(*rows).subquery("buckets") if len(rows) > 1 else rows[0].subquery("buckets")


def grouped(
    kind: str,
    scope: Scope,
    group_by: str | None,
    grain: Grain | None,
    columns: Any,
    *,
    extra_keys: Sequence[ColumnElement[Any]] = (),
    where: Sequence[ColumnElement[bool]] = (),
) -> list[dict[str, Any]]:
    """Run ``columns(population)`` over ``kind`` rows in ``scope``, grouped; rows as dicts.

    Each row also carries ``_group`` and ``_period`` (None when not grouped).
    ``extra_keys`` are further (labelled) group-by columns of the population's base table.
    """
    population = Population(kind)
    conditions = [*_in_scope(population, scope), *where]
    aggregates = columns(population)
    keys, clause = _grouping(population, scope, group_by, grain)
    group_columns = [*keys, *extra_keys]
    statement = select(*group_columns, *aggregates).select_from(clause).where(*conditions)
    if group_columns:
        statement = statement.group_by(*group_columns)
    return [_with_keys(dict(row)) for row in db.session.execute(statement).mappings()]


def _in_scope(population: Population, scope: Scope) -> list[ColumnElement[bool]]:
    """The conditions that keep the population's rows of ``scope``: its period, its filters."""
    begin, end = scope.bounds
    conditions = [population.time >= begin, population.time < end]
    for name, values in scope.filters().items():
        column = population.column(name)
        conditions.append(column == values[0] if name == "customer_is_new" else column.in_(values))
    return conditions


def _grouping(
    population: Population, scope: Scope, group_by: str | None, grain: Grain | None
) -> tuple[list[ColumnElement[Any]], FromClause]:
    """The ``_group`` and ``_period`` keys of a grouped query (those asked for), and the
    FROM clause: the population's, joined to the period buckets when grouped by time."""
    keys: list[ColumnElement[Any]] = []
    if group_by is not None:
        keys.append(population.column(group_by).label("_group"))
    clause = population.from_clause()
    if grain is not None:
        buckets = bucket_table(scope, grain)
        clause = clause.join(
            buckets, and_(population.time >= buckets.c.begins, population.time < buckets.c.ends)
        )
        keys.append(buckets.c.label.label("_period"))
    return keys, clause


DURATION_COLUMNS = {
    "first_response_time": TicketSla.first_response_seconds,
    "resolution_time": TicketSla.resolution_seconds,
    "first_response_time_elapsed": TicketSla.first_response_elapsed_seconds,
    "resolution_time_elapsed": TicketSla.resolution_elapsed_seconds,
}


def _filtered_sla(
    scope: Scope, value_column: SQLColumnExpression[Any]
) -> tuple[Population, list[Any]]:
    population = Population("sla")
    return population, [*_in_scope(population, scope), value_column.is_not(None)]


def percentile_rows(
    duration: str,
    scope: Scope,
    group_by: str | None,
    grain: Grain | None,
    names: Sequence[str] = ALL_KPIS,
) -> list[dict[str, Any]]:
    """n, Σ and the values at the interpolation ranks of each percentile, per group.

    Grouped: one query numbering the values per group (``row_number()`` and
    ``count()`` windows). Ungrouped (the overview cards): n and Σ from the
    covering index, then each percentile's two values by ``ORDER BY … LIMIT 2
    OFFSET k``, which sorts far less than numbering every row.
    """
    if group_by is None and grain is None:
        return [_percentile_row(duration, scope, names)]
    value_column = DURATION_COLUMNS[duration]
    population, conditions = _filtered_sla(scope, value_column)
    keys, clause = _grouping(population, scope, group_by, grain)
    partition = [key.element for key in keys]
    inner = (
        select(
            *keys,
            value_column.label("x"),
            func.row_number().over(partition_by=partition, order_by=value_column).label("rn"),
            func.count().over(partition_by=partition).label("cnt"),
        )
        .select_from(clause)
        .where(*conditions)
        .subquery("ranked")
    )
    outer_keys = [inner.c[key.name] for key in keys]
    aggregates: list[ColumnElement[Any]] = [
        func.count().label("n"),
        func.coalesce(func.sum(inner.c.x), 0).label("total"),
    ]
    for name, numerator, denominator in PERCENTILES:
        rank = rank_sql(inner.c.cnt, numerator, denominator)
        aggregates += [
            func.max(case((inner.c.rn == rank, inner.c.x))).label(f"{name}_low"),
            func.max(case((inner.c.rn == rank + 1, inner.c.x))).label(f"{name}_high"),
        ]
    statement = select(*outer_keys, *aggregates).group_by(*outer_keys)
    return [_with_keys(dict(row)) for row in db.session.execute(statement).mappings()]


def _percentile_row(duration: str, scope: Scope, names: Sequence[str]) -> dict[str, Any]:
    value_column = DURATION_COLUMNS[duration]
    population, conditions = _filtered_sla(scope, value_column)
    clause = population.from_clause()
    count, total = db.session.execute(
        select(func.count(), func.coalesce(func.sum(value_column), 0))
        .select_from(clause)
        .where(*conditions)
    ).one()
    row: dict[str, Any] = {"n": count, "total": total, "_group": None, "_period": None}
    for name, numerator, denominator in PERCENTILES:
        low = high = None
        # Only the percentiles asked for: each one is a sort.
        if count and f"{duration}_{name}" in names:
            rank, _fraction = percentile_ranks(count, numerator, denominator)
            last = min(rank + 1, count)
            # Sort from the nearer end, so the database keeps fewer rows while sorting.
            if rank > count // 2:
                order, offset = value_column.desc(), count - last
            else:
                order, offset = value_column.asc(), rank - 1
            values = db.session.scalars(
                select(value_column)
                .select_from(clause)
                .where(*conditions)
                .order_by(order)
                .limit(last - rank + 1)
                .offset(offset)
            ).all()
            if rank > count // 2:
                values = list(reversed(values))
            low = values[0]
            high = values[1] if len(values) > 1 else None
        row[f"{name}_low"], row[f"{name}_high"] = low, high
    return row


def _with_keys(row: dict[str, Any]) -> dict[str, Any]:
    row.setdefault("_group", None)
    row.setdefault("_period", None)
    return row


def population_aggregates(
    kind: str, names: Sequence[str] = ALL_KPIS, *, distributions: bool = False
) -> tuple[list[ColumnElement[Any]], list[ColumnElement[Any]], list[ColumnElement[bool]]]:
    """The aggregate columns, extra group keys and extra conditions of one population's query
    (for responses with ``distributions``: also the dashboard's distribution sums).

    The raw queries and the roll-ups (:mod:`analysis.metrics.rollup`) both build on this, so a
    roll-up row holds exactly what a raw aggregate row holds.
    """
    if kind == "responses":
        survey_columns = {
            **{f"csat_{d}": getattr(SurveyResponse, f"csat_{d}") for d in CSAT_DIMENSIONS},
            "nps": SurveyResponse.nps,
            "ces": SurveyResponse.ces,
        }
        aggregates = response_aggregates(survey_columns, names)
        if distributions:
            aggregates += distribution_aggregates()
        return aggregates, [], []
    if kind == "sent":
        sent: list[ColumnElement[Any]] = [
            func.count().label("sent"),
            func.count(Invitation.answered_at).label("answered"),
        ]
        return sent, [], []
    if kind == "skipped":
        return (
            [func.count().label("count")],
            [Invitation.skip_reason.label("reason")],
            [Invitation.skip_reason.is_not(None)],
        )
    if kind == "tickets":
        return ticket_aggregates(Ticket.contact_count, Ticket.reopen_count), [], []
    if kind == "sla":
        return sla_aggregates(TicketSla.breached), [TicketSla.priority.label("priority")], []
    if kind == "created":  # the first-response heatmap; its hour key is the roll-up's to add
        seconds, elapsed = (
            TicketSla.first_response_seconds,
            TicketSla.first_response_elapsed_seconds,
        )
        heatmap: list[ColumnElement[Any]] = [
            func.count().label("n"),
            func.coalesce(func.sum(seconds), 0).label("seconds"),
            func.coalesce(func.sum(elapsed), 0).label("elapsed"),
        ]
        return heatmap, [], [seconds.is_not(None)]
    if kind == "keywords":  # each keyword once per response (its primary key)
        negative = SurveyResponse.sentiment_label == SentimentLabel.NEGATIVE
        return (
            [func.count().label("count"), count_if(negative).label("negative")],
            [ResponseKeyword.keyword.label("keyword")],
            [],
        )
    if kind == "aspects":
        said: list[ColumnElement[Any]] = [
            func.count().label("mentions"),
            count_if(ResponseAspect.label == "positive").label("positive"),
            count_if(ResponseAspect.label == "negative").label("negative"),
        ]
        return said, [ResponseAspect.aspect.label("aspect")], []
    raise ValueError(f"unknown population {kind!r}")


def duration_values(
    duration: str, scope: Scope, group_by: str | None, where: Sequence[ColumnElement[bool]]
) -> list[tuple[Any, datetime, int]]:
    """(group value, closed at, seconds) of each measured ``duration`` in scope and ``where``."""
    value_column = DURATION_COLUMNS[duration]
    population, conditions = _filtered_sla(scope, value_column)
    group = population.column(group_by) if group_by is not None else literal(None)
    statement = (
        select(group, population.time, value_column)
        .select_from(population.from_clause())
        .where(*conditions, *where)
    )
    return [(row[0], row[1], row[2]) for row in db.session.execute(statement)]
