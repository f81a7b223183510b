"""Daily roll-ups: every KPI view, exact, from a few rows per day.

A million responses over a year are a few hundred roll-up rows per day
(:mod:`analysis.metrics.rollup_tables`): the day's totals, for each dimension one
row per value, for each pair of dimensions but the agent one row per pair of
values, and every combination of values. :func:`plan` decides whether a view can
be answered from them: the roll-ups are built (``closedloop metrics rebuild``, or
the ``refresh-metrics`` job on its first round) in the scope's time zone. A view
that filters and groups by one dimension reads its slice, by two its pair's slice,
by more (or by the agent and another) the combinations. Another time zone reads
the raw rows.

A read of the combinations without the agent by week, month or none takes the
week pieces (``"*w"``: a week's combinations cut at a month's end, summed) for
the pieces whose every day is in its period and clean, and the other days one by
one (:func:`uses_pieces`): a year with three filters reads a few thousand rows
instead of one per response. With a template version, the ticket populations add
the ``"*v"`` rows (tickets invited with several) of the pieces' days.

Exactness:

* counts and sums are added up, the division happens in
  :mod:`analysis.metrics.definitions` as for raw rows;
* percentiles read the sorted duration arrays of the days in scope and pick the
  values at the interpolation ranks (``numpy.partition``): the same two values
  the raw query reads, so the same interpolation;
* every write to a source table records, by a database trigger in the same
  transaction, the instants whose days it may change (``metric_dirty``). Until
  the ``refresh-metrics`` job has rebuilt those days, a view reads them from the
  raw rows and the other days from the roll-ups: an answer is never stale.

Building them: :mod:`analysis.metrics.rollup_build` (:func:`rebuild`, :func:`refresh`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import BigInteger, bindparam, cast, func, literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from survey_app.extensions import db
from survey_app.memo import remembered

from .definitions import PERCENTILES, percentile_ranks
from .populations import MENTIONS, Population
from .rollup_build import day_runs, rebuild, refresh, text_value
from .rollup_derive import VALUES_DTYPE
from .rollup_io import as_date, driver_rows
from .rollup_plan import (
    Plan,
    days_and_pieces,
    piece_slices,
    plan,
    shareable,
    stored_slice,
)
from .rollup_read import (
    by_period,
    day_seeks,
    listed_days,
    month_listed,
    period_case,
    period_conditions,
    period_labels,
    piece_days,
    response_values,
    seek_conditions,
    shared_rows,
)
from .rollup_tables import (
    AGGREGATES,
    EXTRA_KEYS,
    MONTHLY,
    ROLLUP_TABLES,
    VERSIONED,
    month_start,
)
from .scope import Grain, local_midnight, offset_spans

__all__ = [
    "Plan",
    "day_runs",
    "grouped_rows",
    "offset_spans",
    "percentile_rows",
    "plan",
    "rebuild",
    "refresh",
    "response_values",
]


def _typed(dimension: str | None, value: str | None) -> Any:
    """A roll-up's text value as the raw queries' group key has it."""
    if value is None:
        return None
    if dimension == "template_version":
        return int(value)
    if dimension == "customer_is_new":
        return value == "true"
    return value


# --- reading -----------------------------------------------------------------------------------


def _rollup_selects(
    plan: Plan,
    kind: str,
    columns: Sequence[Any],
    group_by: str | None,
    grain: Grain | None,
    *,
    pieces: tuple[str, ...] = (),
) -> tuple[list[Any], list[ColumnElement[Any]]]:
    """SELECTs of ``columns`` from ``kind``'s roll-ups in the plan's slice, clean days only,
    with their group keys: ``value`` (if grouped), ``period`` (if a grain), ``extra``.
    ``pieces``: the slices of pieces (:func:`~.rollup_plan.piece_slices`) whose whole pieces
    among the clean days are read from them (a SELECT each), the other days from ``"*"``."""
    table = ROLLUP_TABLES[kind]
    dimension = stored_slice(plan, kind)
    chosen: list[ColumnElement[bool]]
    if dimension == VERSIONED:  # a ticket's only version in "*", each of several in "*v"
        chosen = [
            table.c.dimension.in_(("*", VERSIONED)),
            table.c.by_template_version.is_not(None),
        ]
    else:
        chosen = [table.c.dimension == dimension]
    conditions: list[ColumnElement[bool]] = [
        table.c[column].in_(values) for column, values in plan.filters.items()
    ]
    period = period_case(table, plan.scope, grain)
    group = table.c[plan.group_column] if plan.group_column is not None else None
    selected = [
        (group if group is not None else literal_column("NULL")).label("value"),
        (period if period is not None else literal_column("NULL")).label("period"),
        table.c.extra.label("extra"),
        *columns,
    ]
    keys = [key for key in (group, period, table.c.extra) if key is not None]
    if not dimension.startswith("*"):
        days = period_conditions(kind, (plan.scope.start, plan.scope.end))
        if plan.dirty:
            days.append(table.c.day.not_in(sorted(plan.dirty)))
        return [select(*selected).where(*chosen, *conditions, *days)], keys
    # The combinations: the clean days one by one (or month by month: month_listed), each
    # from its first matching index entry, the pieces from theirs.
    single, whole = days_and_pieces(plan, kind, pieces)
    span = (plan.scope.start, plan.scope.end)
    per_day = 2 if dimension == VERSIONED else 1
    seeks = day_seeks(kind, plan.filters, span, per_day=per_day)

    def sought(by_month: bool) -> list[ColumnElement[bool]]:
        found = seek_conditions(kind, plan.filters, span, per_day=per_day, by_month=by_month)
        return [*conditions, *(found or [])]

    by_day = sought(False)  # (the pieces' reads, and the days' unless by month)
    statements = []
    if single or not whole:
        by_month = month_listed(kind, single, seeks)
        listed = listed_days(kind, single, by_month=by_month)
        seeks_of = sought(True) if by_month else by_day
        statements.append(select(*selected).where(*chosen, *listed, *seeks_of))
    several: list[Any] = []  # the days of the pieces read whole
    for piece, starts in whole.items():
        if "|" in piece:  # a pair's months (its rows have no other values to seek by)
            # (named as their month index's second key, then as the day)
            months = month_start(table.c.day).in_(bindparam("pair_months", starts, expanding=True))
            firsts = table.c.day.in_(bindparam("pair_firsts", starts, expanding=True))
            statements.append(
                select(*selected).where(table.c.dimension == piece, months, firsts, *conditions)
            )
            continue
        firsts = table.c.day.in_(bindparam(f"{piece}_starts", starts, expanding=True))
        pieces_of = [table.c.dimension == piece, firsts]
        if dimension == VERSIONED:
            pieces_of.append(table.c.by_template_version.is_not(None))
            several += piece_days(starts, months=piece == MONTHLY)
        statements.append(select(*selected).where(*pieces_of, *by_day))
    if several:
        # The pieces hold the "*" rows, a ticket with several versions under none; its rows
        # ("*v": few) are read for each day of the pieces.
        versioned_days = sorted(several)
        by_month = month_listed(kind, versioned_days, seeks)
        listed = listed_days(kind, versioned_days, by_month=by_month)
        seeks_of = sought(True) if by_month else by_day
        statements.append(
            select(*selected).where(table.c.dimension == VERSIONED, *listed, *seeks_of)
        )
    return statements, keys


def _sum(column: Any) -> ColumnElement[int]:
    """SUM of a roll-up column as a 64-bit integer: PostgreSQL's SUM of a BIGINT is a NUMERIC,
    which the driver returns as Decimal objects, 20 times slower to add up (a year of
    combinations, 80,000 of them: 200 ms a page)."""
    return cast(func.sum(column), BigInteger)


def _label(value: Any) -> str | None:
    return (
        None
        if value is None
        else as_date(value).isoformat()
        if not isinstance(value, str)
        else value
    )


def grouped_rows(
    plan: Plan,
    kind: str,
    group_by: str | None,
    grain: Grain | None,
    raw: Callable[[Sequence[ColumnElement[bool]]], list[dict[str, Any]]],
    *,
    needed: Sequence[str] | None = None,
    alone: bool = False,
) -> list[dict[str, Any]]:
    """The rows the raw query of ``kind`` would return (``_group``, ``_period``, extra key and
    aggregates), from the roll-ups of clean days plus ``raw`` over the dirty days.

    ``needed``: the aggregates the caller uses (default: all of ``kind``'s). A read whose
    rows no other read of the page can take (:func:`~.rollup_plan.shareable`, or ``alone``:
    the caller knows) sums only those; the others sum all, for the reads that take their
    rows."""
    table = ROLLUP_TABLES[kind]
    unshared = plan.group_column is not None and not shareable(plan, kind)
    names = AGGREGATES[kind]
    if (unshared or alone) and needed is not None:
        # (a year of a team and a region by agent summed the 74 columns of 47,000
        # combinations of responses where its KPIs use 10: 200 -> 70 ms on SQLite)
        wanted = set(needed)
        names = tuple(name for name in names if name in wanted)
    extra = EXTRA_KEYS.get(kind)
    sums = [_sum(table.c[n]).label(n) for n in names]
    # Combinations: a read walks many index entries whatever its grain, so the page's totals,
    # trend and p-chart share one read by day, summed into each grain here. (Not the comments'
    # keywords and aspects, which a page reads once: by day, a year is 365 times their rows.)
    combined = stored_slice(plan, kind).startswith("*") and kind not in MENTIONS and not unshared
    pieces = piece_slices(plan, kind, grain)
    statements, keys = _rollup_selects(
        plan, kind, sums, group_by, "day" if combined else grain, pieces=pieces
    )

    def read() -> list[Any]:
        return [
            row
            for statement in statements
            for row in db.session.execute(statement.group_by(*keys)).all()
        ]

    merged: dict[tuple[Any, ...], dict[str, Any]] = {}

    def add(key: tuple[Any, ...], values: Iterable[tuple[str, Any]]) -> None:
        target = merged.get(key)
        if target is None:
            target = merged[key] = {"_group": key[0], "_period": key[1], **dict.fromkeys(names, 0)}
            if extra is not None:
                target[extra] = key[2]
        for name, value in values:
            target[name] += int(value or 0)

    # A page's cards, breakdown, trend and p-chart read the same totals: once per request.
    if combined:
        # (by day, or by week piece where whole pieces serve: one read for every grain but
        # the day)
        daily, regrouped = shared_rows(
            "rollup.daily_rows",
            (kind, pieces, names),
            plan.key(),
            plan.key(grouped=False),
            grouped=plan.group_column is not None,
            read=read,
        )
        labels = period_labels(plan.scope, grain)
        stored_rows = by_period(daily, labels, len(names), keep_group=not regrouped)
    else:
        stored_rows = remembered("rollup.grouped_rows", (kind, names, grain, plan.key()), read)
    for stored in stored_rows:
        group = _typed(group_by, stored[0])
        add((group, _label(stored[1]), stored[2]), zip(names, stored[3:], strict=True))
    if plan.dirty:
        time = Population(kind).time
        for row in raw(plan.dirty_conditions(time)):
            group = getattr(row["_group"], "value", row["_group"])
            extra_value = None if extra is None else text_value(row[extra])
            add((group, row["_period"], extra_value), ((n, row[n]) for n in names if n in row))
    if not merged and extra is None and group_by is None and grain is None:
        merged[(None, None, None)] = {"_group": None, "_period": None, **dict.fromkeys(names, 0)}
    return list(merged.values())


def percentile_rows(
    plan: Plan,
    durations: Sequence[str],
    group_by: str | None,
    grain: Grain | None,
    raw: Callable[[str, Sequence[ColumnElement[bool]]], list[tuple[Any, datetime, int]]],
) -> dict[str, list[dict[str, Any]]]:
    """Per duration: n, Σ and the values at each percentile's interpolation ranks, per group,
    as the raw query returns them, from the sorted arrays of clean days (one query for all
    ``durations``) plus ``raw(duration, conditions)`` values of dirty days."""
    table = ROLLUP_TABLES["durations"]
    columns = [table.c[f"{d}_values"] for d in durations]
    statements, _keys = _rollup_selects(
        plan, "durations", columns, group_by, grain, pieces=piece_slices(plan, "durations", grain)
    )
    blobs: dict[str, dict[tuple[Any, str | None], list[bytes]]] = {d: {} for d in durations}
    stored_rows, regrouped = shared_rows(
        "rollup.percentile_rows",
        (tuple(durations), grain),
        plan.key(),
        plan.key(grouped=False),
        grouped=plan.group_column is not None,
        read=lambda: [
            row for statement in statements for row in driver_rows(statement, binary=True)
        ],
    )
    # A read of the combinations returns a row per combination (a year of a team and two
    # more filters: 14,000): grouped by their raw keys first, converted once per group.
    by_key: dict[tuple[Any, Any], list[Sequence[Any]]] = {}
    for row in stored_rows:
        by_key.setdefault((None if regrouped else row[0], row[1]), []).append(row)
    for (value, period), rows in by_key.items():
        key = (_typed(group_by, value), _label(period))
        for place, duration in enumerate(durations, start=3):
            chunks = [row[place] for row in rows if row[place]]
            if chunks:
                blobs[duration].setdefault(key, []).extend(chunks)
    result: dict[str, list[dict[str, Any]]] = {}
    for duration in durations:

        def dirty(
            more: Sequence[ColumnElement[bool]], duration: str = duration
        ) -> list[tuple[Any, datetime, int]]:
            return raw(duration, more)

        result[duration] = _percentiles(plan, grain, blobs[duration], dirty)
    return result


def _percentiles(
    plan: Plan,
    grain: Grain | None,
    blobs: dict[tuple[Any, str | None], list[bytes]],
    raw: Callable[[Sequence[ColumnElement[bool]]], list[tuple[Any, datetime, int]]],
) -> list[dict[str, Any]]:
    parts = {
        key: [np.frombuffer(b"".join(chunks), dtype=VALUES_DTYPE).astype(np.int64)]
        for key, chunks in blobs.items()
    }
    if plan.dirty:
        labels = period_labels(plan.scope, grain)
        starts = sorted(
            (local_midnight(day, plan.scope.timezone), label) for day, label in labels.items()
        )
        instants = [at for at, _label in starts]
        loose: dict[tuple[Any, str | None], list[int]] = {}
        for group, at, seconds in raw(plan.dirty_conditions(Population("sla").time)):
            label = starts[bisect_right(instants, at) - 1][1]
            loose.setdefault((getattr(group, "value", group), label), []).append(seconds)
        for key, values in loose.items():
            parts.setdefault(key, []).append(np.array(values, dtype=np.int64))
    rows = []
    for (group, period), arrays in parts.items():
        data = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        count = len(data)
        row: dict[str, Any] = {
            "_group": group,
            "_period": period,
            "n": count,
            "total": int(data.sum()),
        }
        wanted = sorted(
            {index for _n, num, den in PERCENTILES for index in _rank_indexes(count, num, den)}
        )
        chosen = np.partition(data, wanted) if wanted else data
        for name, numerator, denominator in PERCENTILES:
            rank, _fraction = percentile_ranks(count, numerator, denominator)
            row[f"{name}_low"] = int(chosen[rank - 1])
            row[f"{name}_high"] = int(chosen[rank]) if rank < count else None
        rows.append(row)
    return rows


def _rank_indexes(count: int, numerator: int, denominator: int) -> list[int]:
    rank, _fraction = percentile_ranks(count, numerator, denominator)
    return [rank - 1] + ([rank] if rank < count else [])


def heatmap_cells(plan: Plan) -> list[tuple[int, int, int, int]]:
    """The first-response heatmap of the plan's clean days from the roll-ups: (hour of the
    week counted from Monday 00:00 local, n, Σ seconds, Σ elapsed seconds)."""
    table = ROLLUP_TABLES["created"]
    sums = [_sum(table.c.n), _sum(table.c.seconds), _sum(table.c.elapsed)]
    statements, keys = _rollup_selects(
        plan, "created", sums, None, None, pieces=piece_slices(plan, "created", None)
    )
    return [
        (int(how), int(n), int(seconds), int(elapsed))
        for statement in statements
        for _value, _period, how, n, seconds, elapsed in db.session.execute(
            statement.group_by(*keys)
        )
    ]
