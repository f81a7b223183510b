"""Reading the roll-ups fast (:mod:`analysis.metrics.rollup`): combinations, pieces, periods.

A view with three filters or more (or the agent and another dimension) reads the combined
slice: one row per day and combination of values, about one per response on a busy day, so a
year holds about as many rows as responses. Two things keep such a page fast:

* **Seeks** (:func:`seek_conditions`): the slice's index (``dimension, day`` and then
  :data:`~.rollup_tables.VALUE_COLUMNS`) is searched day by day from the first entry the
  filters accept, instead of walking the period's every entry and rejecting most; or month
  by month through the index led by the month, the day tested on the entries
  (:func:`listed_days`): the only index of the populations of
  :data:`~.rollup_tables.MONTH_KEYED`, on PostgreSQL the second of the others for reads of
  many days and searches (:func:`month_listed`: a year by agent).
* **Whole week pieces** (:func:`split_days`): a view by week, month or none reads the
  pieces of its period from their own slice, its other days one by one.
* **One read per slice and page** (:func:`shared_rows`, :func:`by_period`): the page's totals,
  trend and p-chart are read once by day and summed into each grain; an ungrouped read takes
  the rows of the grouped read its breakdown made, ignoring their group values.

A page over a year with a team, a region and a priority on the benchmark's million responses:
2.1 s → 0.6 s on SQLite and on PostgreSQL (``benchmarks/metrics_bench.py``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Hashable, Sequence
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any, TypeVar, cast

import numpy as np
from sqlalchemy import String, bindparam, case, false, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from survey_app.extensions import db
from survey_app.memo import remembered, request_memo
from survey_app.surveys.models import SurveyResponse

from .rollup_build import STATE_ID
from .rollup_io import as_date
from .rollup_tables import (
    MONTH_KEYED,
    ROLLUP_TABLES,
    VALUE_COLUMNS,
    DirtyInstant,
    RollupState,
    first_of_month,
    month_end,
    month_start,
    piece_end,
    piece_last_day,
    piece_start,
)
from .scope import Grain, Scope

#: The most index seeks per day a read of the combinations makes to reach the entries its
#: filters accept. Each seek costs about as much as walking a few dozen entries: naming the 4
#: priorities to reach a region's entries paid (198 → 45 ms a read on SQLite), naming 16
#: pairs of values to reach a product line's did not pay more (78 ms).
SEEKS_PER_DAY = 25
#: The same for the populations searched month by month (:data:`~.rollup_tables.MONTH_KEYED`):
#: a month holds thirty days' entries, so naming more values pays. At 100, a year of the
#: heatmap's combinations with a template version, a region and a priority names every team
#: and channel in both combined slices (``"*"`` and ``"*v"``: 50 seeks a month) instead of
#: walking the year's entries (182 -> 75 ms on PostgreSQL).
SEEKS_PER_MONTH = 100
#: The fewest searches a day (:func:`day_seeks`) for which a read of the populations with week
#: pieces names its days month by month (:func:`month_listed`).
MONTH_SEEKS = 10


def seek_conditions(
    kind: str,
    filters: dict[str, tuple[str, ...]],
    period: tuple[date, date],
    *,
    per_day: int = 1,
    by_month: bool = False,
) -> list[ColumnElement[bool]] | None:
    """Conditions that let a read of ``kind``'s combinations over ``period`` (first and last
    day) with ``filters`` (``by_<dimension>`` column → accepted values) seek to the entries
    the filters accept (empty: the filters alone do); None when no filtered column can be
    reached (read the period's range then). ``per_day``: the seeks a day before the
    values (2 for ``"*"`` and ``"*v"``); ``by_month``: the read names its days month by
    month (:func:`listed_days`).

    The index is searched by equality on its leading columns: a filtered column is one, and
    an unfiltered one before a filtered one becomes one by naming every value it has in the
    period (``IN``, from its own slice), while the seeks a day stay within
    :data:`SEEKS_PER_DAY` (a month: :data:`SEEKS_PER_MONTH`) and none of its rows lacks a
    value (``NULL`` matches no ``IN``).
    The caller names the period's days one by one (``day IN``) or their months: a range of
    days would end the search's equalities at the day.
    """
    budget = SEEKS_PER_MONTH if by_month else SEEKS_PER_DAY
    prefix = _seek_prefix(kind, filters, period, per_day, budget)
    if not prefix:
        return None
    table = ROLLUP_TABLES[kind]
    return [table.c[column].in_(values) for column, values in prefix if values is not None]


def day_seeks(
    kind: str, filters: dict[str, tuple[str, ...]], period: tuple[date, date], *, per_day: int = 1
) -> int:
    """The index searches a day of :func:`seek_conditions` by day (0: none reach a filter)."""
    prefix = _seek_prefix(kind, filters, period, per_day, SEEKS_PER_DAY)
    if not prefix:
        return 0
    counts = (len(values if values is not None else filters[c]) for c, values in prefix)
    return per_day * math.prod(counts)


def _seek_prefix(
    kind: str,
    filters: dict[str, tuple[str, ...]],
    period: tuple[date, date],
    per_day: int,
    budget: int,
) -> list[tuple[str, tuple[str, ...] | None]]:
    """The leading index columns :func:`seek_conditions` searches by equality: (column, the
    values it names, or None for a filtered column)."""
    remaining = [column for column in VALUE_COLUMNS if column in filters]
    prefix: list[tuple[str, tuple[str, ...] | None]] = []
    seeks = per_day
    for column in VALUE_COLUMNS:
        if not remaining:
            break
        if column == remaining[0]:
            seeks *= len(filters[remaining.pop(0)])
            prefix.append((column, None))
            continue
        values = slice_values(kind, column.removeprefix("by_"), period)
        if values is None or seeks * len(values) > budget:
            break
        seeks *= len(values)
        prefix.append((column, values))
    while prefix and prefix[-1][1] is not None:  # named but no filtered column after them
        prefix.pop()
    return prefix


def slice_values(kind: str, dimension: str, period: tuple[date, date]) -> tuple[str, ...] | None:
    """Every value ``dimension`` has in ``kind``'s roll-ups over ``period`` (read from its own
    slice); None when some row has none, or the slice has no rows. Once per request, and
    kept between requests until the roll-ups change (:func:`until_rebuilt`): a page with
    three filters names the values of two or three dimensions in each population's reads,
    21 reads of 5 ms on SQLite at a million responses."""
    table = ROLLUP_TABLES[kind]

    def read() -> tuple[str, ...] | None:
        found = db.session.scalars(
            select(table.c.value)
            .where(table.c.dimension == dimension, *period_conditions(kind, period))
            .distinct()
        ).all()
        return None if not found or None in found else tuple(sorted(found))

    key = (kind, dimension, *period)
    return remembered("rollup.slice_values", key, lambda: until_rebuilt("slice_values", key, read))


def period_conditions(kind: str, period: tuple[date, date]) -> list[ColumnElement[bool]]:
    """The conditions of a read of ``kind``'s roll-ups over ``period`` (first and last day):
    the days', after the months' for the populations of :data:`~.rollup_tables.MONTH_KEYED`
    (their index's second key)."""
    table = ROLLUP_TABLES[kind]
    first, last = period
    days = [table.c.day >= first, table.c.day <= last]
    if kind not in MONTH_KEYED:
        return days
    month = month_start(table.c.day)
    return [month >= first_of_month(first), month <= first_of_month(last), *days]


def month_listed(kind: str, days: Sequence[date], seeks: int) -> bool:
    """Whether a read of ``kind``'s combinations names ``days`` month by month (its index
    led by the month, :func:`~.rollup_tables.month_start`) rather than day by day, when
    :func:`day_seeks` gives ``seeks`` a day: always for the populations of
    :data:`~.rollup_tables.MONTH_KEYED` (the only index they have); for the others on
    PostgreSQL, when the days are at least half of their months' days and take at least
    :data:`MONTH_SEEKS` searches a day.

    PostgreSQL 15 descends its B-tree anew for each value of an ``IN`` list (about 11 µs
    each here): by day, a year by agent with three filters took 9,125 searches a read, by
    month 325 (the responses' read 102 -> 22 ms; the page 745 -> 520 ms at a million
    responses). SQLite's searches cost far less; there a month's entries, whose rows lie
    scattered in the table (written day by day), gained 10 % on some pages, lost 15 % on
    others (and without statistics its planner may walk the day index's range instead), so
    it has no such index. With fewer searches a day, PostgreSQL gains nothing either."""
    if kind in MONTH_KEYED:
        return True
    if seeks < MONTH_SEEKS or not days or db.session.get_bind().dialect.name != "postgresql":
        return False
    months = {first_of_month(day) for day in days}
    return 2 * len(days) >= sum(month_end(month).day for month in months)


def listed_days(kind: str, days: Sequence[date], *, by_month: bool) -> list[ColumnElement[bool]]:
    """The conditions naming exactly ``days`` (sorted, clean) in a read of ``kind``'s
    combinations: each day (a search of the index from its first matching entry each), or
    ``by_month`` (:func:`month_listed`) each month, then the days' range tested on the
    entries, less the days between that are not among them."""
    table = ROLLUP_TABLES[kind]
    if not by_month:
        return [table.c.day.in_(bindparam("clean_days", list(days), expanding=True))]
    if not days:
        return [false()]
    wanted = set(days)
    between = (days[0] + timedelta(days=n) for n in range((days[-1] - days[0]).days))
    left_out = [day for day in between if day not in wanted]
    months = sorted({first_of_month(day) for day in days})
    listed = [
        month_start(table.c.day).in_(bindparam("clean_months", months, expanding=True)),
        table.c.day >= days[0],
        table.c.day <= days[-1],
    ]
    if left_out:
        listed.append(table.c.day.not_in(left_out))
    return listed


def stored_days(kind: str) -> tuple[date, date] | None:
    """The first and the last day ``kind``'s roll-ups hold (None: none), from its totals
    (every day with a row has one), kept until the roll-ups change (:func:`until_rebuilt`).
    A read of the combinations names only the days between: a period reaching back before
    the data begins (its previous period, on a deployment younger than two of them) would
    search the index for each of its days and find nothing."""
    table = ROLLUP_TABLES[kind]

    def read() -> tuple[date, date] | None:
        low, high = db.session.execute(
            select(func.min(table.c.day), func.max(table.c.day)).where(table.c.dimension == "")
        ).one()
        return None if low is None else (as_date(low), as_date(high))

    return remembered(
        "rollup.stored_days", (kind,), lambda: until_rebuilt("stored_days", (kind,), read)
    )


T = TypeVar("T")


def built_state() -> tuple[str, datetime] | None:
    """The roll-ups' time zone and the stamp of their last build or refresh (None: not
    built), read once per read-only request: a page asks before each of its 40-70 reads
    (8 ms a page on PostgreSQL when each asked the database)."""

    def read() -> tuple[str, datetime] | None:
        state = db.session.get(RollupState, STATE_ID)
        return None if state is None else (state.timezone, state.built_at)

    return remembered("rollup.state", (), read)


def until_rebuilt(name: str, key: tuple[Hashable, ...], read: Callable[[], T]) -> T:
    """``read()``'s answer about the roll-ups' rows, kept in this process (under ``name`` and
    ``key``) until a build or refresh (:mod:`.rollup_build`) changes them. Exact: each stamps
    the state row, whose stamp is part of the key; the days written since are read from the
    raw rows by the callers, not from what is kept."""
    state = built_state()
    full = (name, str(db.engine.url), state[1] if state else None, *key)
    if full in _KEPT:
        return cast(T, _KEPT[full])
    value = read()
    if len(_KEPT) >= 1024:
        _KEPT.clear()
    _KEPT[full] = value
    return value


_KEPT: dict[tuple[Hashable, ...], object] = {}


def shared_rows(
    name: str,
    key: tuple[Hashable, ...],
    plan_key: tuple[Hashable, ...],
    slice_key: tuple[Hashable, ...],
    *,
    grouped: bool,
    read: Callable[[], list[Any]],
) -> tuple[list[Any], bool]:
    """``read()``'s rows once per read-only request, and whether they are another read's.

    ``plan_key`` names the read's slice, filters, period and grouping; ``slice_key`` the same
    but the grouping. An ungrouped read takes the rows of a grouped read of its slice made
    earlier in the request (the page's breakdown before its cards): each roll-up row lies in
    one group, so the rows add up to the same sums and arrays once their group values are
    ignored (the second value returned is then True).
    """
    memo, by_slice = request_memo(name), request_memo(f"{name}.by_slice")
    if memo is None or by_slice is None:
        return read(), False
    whole, shared = (*key, plan_key), (*key, slice_key)
    if whole in memo:
        return memo[whole], False
    if not grouped and shared in by_slice:
        return by_slice[shared], True
    rows = memo[whole] = read()
    by_slice.setdefault(shared, rows)
    return rows, False


def by_period(
    rows: Sequence[Sequence[Any]],
    labels: dict[date, str | None],
    width: int,
    *,
    keep_group: bool = True,
) -> list[tuple[Any, ...]]:
    """Rows ``(group value, day, extra, sums …)`` summed per ``(group value, label of the
    day's period, extra)``; ``keep_group=False``: per ``(None, label, extra)``."""
    if not rows:
        return []
    keys: dict[tuple[Any, ...], int] = {}
    codes = np.fromiter(
        (
            keys.setdefault((r[0] if keep_group else None, labels[as_date(r[1])], r[2]), len(keys))
            for r in rows
        ),
        dtype=np.int64,
        count=len(rows),
    )
    sums = np.zeros((len(keys), width), dtype=np.int64)
    np.add.at(sums, codes, np.array([r[3:] for r in rows], dtype=np.int64))
    return [(*key, *sums[code].tolist()) for key, code in keys.items()]


@functools.lru_cache(maxsize=64)
def period_labels(scope: Scope, grain: Grain | None) -> dict[date, str | None]:
    """Each day of the scope → the label of its period of ``grain`` (None: no grain)."""
    labels: dict[date, str | None] = {}
    day = scope.start
    while day <= scope.end:
        if grain is None:
            labels[day] = None
        elif grain == "day":
            labels[day] = day.isoformat()
        elif grain == "week":
            labels[day] = (day - timedelta(days=day.weekday())).isoformat()
        else:
            labels[day] = day.replace(day=1).isoformat()
        day += timedelta(days=1)
    return labels


def period_case(table: Any, scope: Scope, grain: Grain | None) -> ColumnElement[Any] | None:
    """The period label of a roll-up row's day, in SQL (buckets are runs of days)."""
    if grain is None:
        return None
    labels = period_labels(scope, grain)
    if grain == "day":
        return table.c.day
    firsts: dict[str, date] = {}
    for day, label in labels.items():
        firsts.setdefault(str(label), day)
    bounds = sorted((first, label) for label, first in firsts.items())
    whens = [(table.c.day < following, label) for (_f, label), (following, _l) in pairwise(bounds)]
    return case(*whens, else_=bounds[-1][1]) if whens else literal(bounds[0][1], String())


def piece_days(starts: Sequence[date], *, months: bool = False) -> list[date]:
    """Every day of the week pieces (:func:`~.rollup_tables.piece_start`) beginning on
    ``starts`` (``months``: of the months)."""
    return [
        start + timedelta(days=n)
        for start in starts
        for n in range((piece_last_day(start, month=months) - start).days + 1)
    ]


@functools.lru_cache(maxsize=256)
def split_days(
    first: date, last: date, dirty: frozenset[date], *, pieces: bool, months: bool = False
) -> tuple[tuple[date, ...], tuple[date, ...], tuple[date, ...]]:
    """The clean days of ``first``..``last`` to read one by one, the first days of the
    week pieces (:func:`~.rollup_tables.piece_start`) and, with ``months``, of the months to
    read whole: those whose every day is in the period and not ``dirty`` (a month before its
    week pieces; no piece unless ``pieces``)."""
    single: list[date] = []
    starts: list[date] = []
    month_starts: list[date] = []
    day = first
    while day <= last:
        if months and day.day == 1 and month_end(day) <= last:
            month = [day + timedelta(days=n) for n in range(month_end(day).day)]
            if dirty.isdisjoint(month):
                month_starts.append(day)
                day = month[-1] + timedelta(days=1)
                continue
        start = piece_start(day)
        end = piece_end(start)
        run = [day + timedelta(days=n) for n in range((min(end, last) - day).days + 1)]
        if pieces and start == day and end <= last and dirty.isdisjoint(run):
            starts.append(day)
        else:
            single += (d for d in run if d not in dirty)
        day = run[-1] + timedelta(days=1)
    return tuple(single), tuple(starts), tuple(month_starts)


def response_values(names: Sequence[str]) -> dict[str, list[str]] | None:
    """The values seen on responses of each dimension ``names`` (the dashboard's filter
    choices), from the roll-ups plus the responses written since they were last refreshed;
    None when the roll-ups are not built."""
    if built_state() is None:
        return None
    table = ROLLUP_TABLES["responses"]
    since = db.session.scalar(select(func.min(DirtyInstant.at)))
    options: dict[str, list[str]] = {}
    for name in names:

        def stored(name: str = name) -> set[str]:
            return set(
                db.session.scalars(
                    select(table.c.value)
                    .where(table.c.dimension == name, table.c.value.is_not(None))
                    .distinct()
                )
            )

        seen = set(until_rebuilt("response_values", (name,), stored))
        if since is not None:
            column = getattr(SurveyResponse, name)
            seen.update(
                db.session.scalars(
                    select(column).where(SurveyResponse.submitted_at >= since).distinct()
                )
            )
        options[name] = sorted(value for value in seen if value)
    return options
