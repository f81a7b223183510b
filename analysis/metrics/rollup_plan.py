"""Which roll-up rows answer a view (:mod:`analysis.metrics.rollup`): its slice, its pieces.

:func:`plan` picks the slice: the totals, one dimension's, a pair's or the combinations
(``"*"``, ``"*v"`` with a template version). A read of the combinations without the agent
takes the pieces (:mod:`~analysis.metrics.rollup_tables`: ``"*m"`` months, ``"*w"`` week
pieces) for the whole ones among its clean days (:func:`piece_slices`,
:func:`days_and_pieces`): a year with three filters reads a month's combinations once
instead of each day's.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.sql.elements import ColumnElement, SQLColumnExpression

from survey_app.extensions import db

from .rollup_build import day_runs, text_value
from .rollup_read import built_state, split_days, stored_days
from .rollup_tables import (
    BY,
    MONTH_PAIRED,
    MONTH_PAIRS,
    MONTHLY,
    VERSION_IN_COMBINATION,
    VERSIONED,
    WEEKLY,
    WITH_PAIRS,
    WITH_PIECES,
    DirtyInstant,
    has_pair_slice,
    pair_slice,
    piece_last_day,
)
from .scope import Grain, Scope, local_midnight

#: Per population, the slices of its pairs kept by month (:data:`~.rollup_tables.MONTH_PAIRS`).
MONTH_PAIR_SLICES = {
    kind: frozenset(pair_slice(*pair) for pair in pairs) for kind, pairs in MONTH_PAIRS.items()
}


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a view reads the roll-ups: which slice, which of its values, which days raw."""

    scope: Scope
    #: The slice: "" (totals), a dimension, a pair of dimensions ("team|channel"), "*"
    #: (combinations) or "*v" (combinations with the template version).
    dimension: str
    #: Roll-up column → accepted values (``value`` or ``by_<dimension>``).
    filters: dict[str, tuple[str, ...]]
    #: The roll-up column holding the group_by dimension's value.
    group_column: str | None
    dirty: frozenset[date]

    def dirty_conditions(self, time: SQLColumnExpression[Any]) -> list[ColumnElement[bool]]:
        """The raw rows' condition for the dirty days of the scope."""
        ranges = [
            and_(
                time >= local_midnight(first, self.scope.timezone),
                time < local_midnight(last + timedelta(days=1), self.scope.timezone),
            )
            for first, last in day_runs(self.dirty)
        ]
        return [or_(*ranges)]

    def key(self, *, grouped: bool = True) -> tuple[Any, ...]:
        """What the roll-up rows the plan reads depend on (with the population and grain);
        ``grouped=False``: but its grouping."""
        return (
            self.scope,
            self.dimension,
            tuple(sorted(self.filters.items())),
            self.group_column if grouped else None,
            self.dirty,
        )


def plan(scope: Scope, group_by: str | None) -> Plan | None:
    """How to answer ``scope`` grouped by ``group_by`` from the roll-ups; None: read raw rows."""
    filters = scope.filters()
    involved = set(filters) | ({group_by} if group_by is not None else set())
    if len(involved) > 1 and not involved <= set(BY):
        return None
    state = built_state()
    if state is None or state[0] != scope.timezone:
        return None
    if has_pair_slice(involved):
        dimension = pair_slice(*involved)
        columns = {name: f"by_{name}" for name in involved}
    elif len(involved) > 1:
        dimension = VERSIONED if "template_version" in involved else "*"
        columns = {name: f"by_{name}" for name in involved}
    else:
        dimension = next(iter(involved), "")
        columns = {dimension: "value"} if dimension else {}
    accepted = {
        columns[name]: tuple(text_value(v) for v in values) for name, values in filters.items()
    }
    group_column = columns[group_by] if group_by is not None else None
    zone = scope.zone
    begin, end = scope.bounds
    instants = db.session.scalars(
        select(DirtyInstant.at).where(DirtyInstant.at >= begin, DirtyInstant.at < end).distinct()
    )
    dirty = frozenset(at.astimezone(zone).date() for at in instants)
    return Plan(scope, dimension, accepted, group_column, dirty)


def stored_slice(plan: Plan, kind: str) -> str:
    """The slice of ``kind``'s table that holds the plan's rows."""
    dimension = plan.dimension
    if "|" in dimension and kind not in WITH_PAIRS:  # a pair, read from the combinations
        dimension = VERSIONED if "template_version" in dimension else "*"
    if dimension == VERSIONED and kind in VERSION_IN_COMBINATION:
        dimension = "*"  # their combinations carry the template version
    return dimension


def piece_slices(plan: Plan, kind: str, grain: Grain | None) -> tuple[str, ...]:
    """The pieces a read of ``kind`` by ``grain`` takes for the whole ones among its clean
    days, largest first: reads of the combinations of :data:`~.rollup_tables.WITH_PIECES`
    without the agent (a template version's too) take the week pieces by week, the months
    and then the week pieces by month or none, nothing by day; a pair's read of
    :data:`~.rollup_tables.MONTH_PAIRED` by month or none its pair's months."""
    if kind in MONTH_PAIRED:
        paired = plan.dimension in MONTH_PAIR_SLICES[kind] and grain in (None, "month")
        return (plan.dimension,) if paired else ()
    if (
        grain == "day"
        or kind not in WITH_PIECES
        or stored_slice(plan, kind) not in ("*", VERSIONED)
        or "by_agent" in plan.filters
        or plan.group_column == "by_agent"
    ):
        return ()
    return (WEEKLY,) if grain == "week" else (MONTHLY, WEEKLY)


def days_and_pieces(
    plan: Plan, kind: str, pieces: tuple[str, ...]
) -> tuple[list[date], dict[str, list[date]]]:
    """The plan's clean days read one by one, and per slice of ``pieces`` (the week pieces',
    or by month: the month pieces', a pair's) the first days of the pieces read whole (every
    day of which is in the scope and clean), among the days ``kind``'s roll-ups hold
    (:func:`~.rollup_read.stored_days`)."""
    stored = stored_days(kind)
    first, last = plan.scope.start, plan.scope.end
    if stored is None or max(first, stored[0]) > min(last, stored[1]):
        return [], {}
    low, high = stored
    single, weeks, months = split_days(
        first, last, plan.dirty, pieces=WEEKLY in pieces, months=any(p != WEEKLY for p in pieces)
    )
    # A piece is whole if the scope holds its every day, held or not: it sums the held ones.
    whole = {
        piece: [
            start
            for start in (weeks if piece == WEEKLY else months)
            if start <= high and piece_last_day(start, month=piece != WEEKLY) >= low
        ]
        for piece in pieces
    }
    held = [day for day in single if low <= day <= high]
    return held, {piece: starts for piece, starts in whole.items() if starts}


def shareable(plan: Plan, kind: str) -> bool:
    """Whether the page's reads without the plan's grouping (its cards, trend and p-chart)
    can take a grouped read's rows: only when they read the same slice with the same
    pieces. Not when the filters alone fit a smaller slice (a pair's, a dimension's), nor
    for a grouping by the agent without an agent filter (the others read the pieces, which
    have no agent). Such a grouped read is then made by its own grain: a year of a team and
    a region by agent had read 12,600 rows (agent × day) for one per agent (700 → 460 ms a
    page on SQLite, 710 → 545 on PostgreSQL)."""
    if plan.group_column is None:
        return True
    filters = {column.removeprefix("by_") for column in plan.filters}
    if len(filters) < 2 or (kind in WITH_PAIRS and has_pair_slice(filters)):
        return False
    return not (plan.group_column == "by_agent" and "by_agent" not in plan.filters)
