"""Building the daily roll-ups (:mod:`analysis.metrics.rollup`) from the raw rows.

Local days come from UTC instants with the zone's UTC offset, taken in spans
over which the offset does not change (:func:`offset_spans`), so SQLite and
PostgreSQL give the same days whatever the daylight-saving rules. Each slice is
one grouped query per population (the aggregates of
:func:`analysis.metrics.populations.population_aggregates`); the durations are
read once per chunk of days and sorted per slice value with numpy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from flask import current_app
from sqlalchemy import (
    Date,
    Integer,
    String,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement, Label, Null, SQLColumnExpression

from survey_app.extensions import db

from .definitions import DURATIONS
from .populations import DURATION_COLUMNS, Population, population_aggregates
from .rollup_tables import (
    AGGREGATES,
    BY,
    COMBINED,
    ROLLUP_TABLES,
    VERSION_IN_COMBINATION,
    VERSIONED,
    DirtyInstant,
    RollupState,
)
from .scope import local_midnight, offset_spans

log = logging.getLogger(__name__)

#: Days rebuilt per round of queries (bounds memory and the length of a transaction).
CHUNK_DAYS = 31
STATE_ID = 1
#: Duration arrays are stored as little-endian 32-bit integers.
VALUES_DTYPE = np.dtype("<i4")


# --- local days --------------------------------------------------------------------------------


def _local_day(column: SQLColumnExpression[Any], minutes: int) -> ColumnElement[Any]:
    if db.session.get_bind().dialect.name == "sqlite":  # naive UTC text
        return func.date(column, f"{minutes:+d} minutes")
    shifted = func.timezone("UTC", column) + literal_column(f"INTERVAL '{int(minutes)} minutes'")
    return cast(shifted, Date)


def _local_hour_of_week(column: SQLColumnExpression[Any], minutes: int) -> ColumnElement[Any]:
    """The local hour of the week (0 = Monday 00:00 … 167) of a UTC instant at a fixed offset."""
    if db.session.get_bind().dialect.name == "sqlite":
        shift = f"{minutes:+d} minutes"
        weekday = (cast(func.strftime("%w", column, shift), Integer) + 6) % 7  # %w: 0 = Sunday
        return weekday * 24 + cast(func.strftime("%H", column, shift), Integer)
    shifted = func.timezone("UTC", column) + literal_column(f"INTERVAL '{int(minutes)} minutes'")
    weekday = cast(func.extract("isodow", shifted), Integer) - 1  # isodow: 1 = Monday
    return weekday * 24 + cast(func.extract("hour", shifted), Integer)


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _value_sql(population: Population, dimension: str) -> ColumnElement[Any]:
    column = population.column(dimension)
    if dimension == "customer_is_new":
        return case((column.is_(True), "true"), (column.is_(False), "false"))
    return cast(column, String)


def text_value(value: Any) -> str:
    value = getattr(value, "value", value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- building ----------------------------------------------------------------------------------


def day_runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days, each at most :data:`CHUNK_DAYS` long."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if (
            runs
            and day == runs[-1][1] + timedelta(days=1)
            and (day - runs[-1][0]).days < CHUNK_DAYS
        ):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _insert_counts(kind: str, table: Any, first: date, last: date, timezone: str) -> None:
    """Insert the roll-up rows of ``kind`` for the days ``first``..``last``, in SQL.

    One grouped ``INSERT … SELECT`` over the raw rows writes the combinations (``"*"``; with the
    template version for the populations of :data:`VERSION_IN_COMBINATION`); for the ticket
    populations a second one writes their combinations with the template version (``"*v"``, a
    ticket once per version it was invited with). Every other slice is a sum of those rows,
    since each raw row lies in exactly one combination of its slice: the day's totals and the
    combined dimensions from ``"*"``, the template version from ``"*"`` or ``"*v"``. No row
    passes through Python.
    """
    names = AGGREGATES[kind]
    versioned = kind in VERSION_IN_COMBINATION
    # The heatmap's tickets have no template version (one counted once however invited).
    read = ("*",) if versioned or kind == "created" else ("*", VERSIONED)
    for dimension in read:
        statement = _slice_select(kind, dimension, first, last, timezone)
        if statement is not None:
            db.session.execute(insert(table).from_select(_ROLLUP_KEYS + list(names), statement))
    derived = ["", *COMBINED]
    if versioned:
        derived.append("template_version")
    _insert_derived(table, names, first, last, "*", derived)
    if VERSIONED in read:
        _insert_derived(table, names, first, last, VERSIONED, ["template_version"])


def _insert_derived(
    table: Any, names: Sequence[str], first: date, last: date, source: str, slices: list[str]
) -> None:
    """The ``slices`` ("" = the day's totals, else a dimension) summed from the ``source``
    combination rows of the days ``first``..``last``: on PostgreSQL one scan with ``GROUPING
    SETS``, elsewhere one ``INSERT … SELECT … GROUP BY`` per slice."""
    by = {d: table.c[f"by_{d}"] for d in BY}
    scope = (table.c.dimension == source, table.c.day >= first, table.c.day <= last)
    sums = [func.sum(table.c[name]).label(name) for name in names]
    no_combination = [null().label(f"by_{d}") for d in BY]
    statements = []
    dimensions = [d for d in slices if d]
    if db.session.get_bind().dialect.name == "postgresql" and len(slices) > 1:
        kept = [(func.grouping(by[d]) == 0, d) for d in dimensions]  # the set's dimension
        sets = [tuple_(table.c.day, table.c.extra, by[d]) for d in dimensions]
        if "" in slices:
            sets.insert(0, tuple_(table.c.day, table.c.extra))
        statements.append(
            select(
                table.c.day,
                case(*kept, else_="").label("dimension"),
                case(*((kept_, by[d]) for kept_, d in kept), else_=null()).label("value"),
                table.c.extra,
                *no_combination,
                *sums,
            )
            .where(*scope)
            .group_by(func.grouping_sets(*sets))
        )
    else:
        # The day's totals last, from the smallest slice just written (new/returning: two
        # values a day) instead of the combinations: every row is in one value of it.
        smallest = "customer_is_new" if "customer_is_new" in dimensions else None
        for dimension in sorted(slices, key=lambda d: d == ""):
            value = by[dimension] if dimension else null()
            where = scope
            if not dimension and smallest is not None:
                where = (table.c.dimension == smallest, *scope[1:])
            statements.append(
                select(
                    table.c.day,
                    literal(dimension, String).label("dimension"),
                    value.label("value") if dimension else null().label("value"),
                    table.c.extra,
                    *no_combination,
                    *sums,
                )
                .where(*where)
                .group_by(table.c.day, table.c.extra, *([value] if dimension else []))
            )
    for statement in statements:
        db.session.execute(insert(table).from_select(_ROLLUP_KEYS + list(names), statement))


def _unlabelled(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return column.element if isinstance(column, Label) else column


#: The key columns of every roll-up row, in the order the grouped selects name them.
_ROLLUP_KEYS = ["day", "dimension", "value", "extra", *(f"by_{d}" for d in BY)]


def _slice_select(kind: str, dimension: str, first: date, last: date, timezone: str) -> Any | None:
    """One slice's raw aggregates by (day, value, extra, combination), as roll-up rows.

    A chunk of days cut by a UTC offset change is read in one select per span of constant
    offset; their partial sums are added again (a day cut in two gives one row).
    """
    zone = ZoneInfo(timezone)
    begin = local_midnight(first, timezone)
    end = local_midnight(last + timedelta(days=1), timezone)
    names = AGGREGATES[kind]
    parts: list[Any] = []
    for span_begin, span_end, minutes in offset_spans(begin, end, zone):
        population = Population(kind)
        aggregates, extra_keys, where = population_aggregates(kind, distributions=True)
        day = _local_day(population.time, minutes).label("day")
        if kind == "created":  # the local hour of the week, counted from Monday 00:00
            extra: ColumnElement[Any] = cast(_local_hour_of_week(population.time, minutes), String)
        elif extra_keys:
            extra = cast(_unlabelled(extra_keys[0]), String)
        else:
            extra = null()
        if dimension in ("*", VERSIONED):
            value: ColumnElement[Any] = null()
            combination = [_value_sql(population, d) for d in COMBINED]
            with_version = dimension == VERSIONED or kind in VERSION_IN_COMBINATION
            combination.append(
                _value_sql(population, "template_version") if with_version else null()
            )
        else:
            value = _value_sql(population, dimension)
            combination = [null() for _ in BY]
        groups = [day, value, extra, *combination]
        parts.append(
            select(
                day,
                literal(dimension, String).label("dimension"),
                value.label("value"),
                extra.label("extra"),
                *(c.label(f"by_{d}") for d, c in zip(BY, combination, strict=True)),
                *(func.coalesce(_unlabelled(a), 0).label(a.name) for a in aggregates),
            )
            .select_from(population.from_clause())
            .where(population.time >= span_begin, population.time < span_end, *where)
            .group_by(*(g for g in groups if not isinstance(g, Null)))
        )
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    spans = union_all(*parts).subquery()
    keys = [spans.c[k] for k in _ROLLUP_KEYS]
    return select(*keys, *(func.sum(spans.c[n]).label(n) for n in names)).group_by(*keys)


#: The ``by_<dimension>`` values of rows outside the combined slice.
NO_COMBINATION = (None,) * len(BY)


def _build_durations(first: date, last: date, timezone: str) -> list[dict[str, Any]]:
    """The duration roll-up rows of the days ``first``..``last``: per slice and value, each
    duration's count, sum and sorted values."""
    zone = ZoneInfo(timezone)
    begin, end = (
        local_midnight(first, timezone),
        local_midnight(last + timedelta(days=1), timezone),
    )
    rows: list[dict[str, Any]] = []
    # Two reads: the template version multiplies a ticket by the versions it was invited with,
    # so it is read apart, with the combinations ("*v") it is in.
    for dimensions in (list(COMBINED), list(BY)):
        fetched: list[Any] = []
        for span_begin, span_end, minutes in offset_spans(begin, end, zone):
            population = Population("sla")
            values = [_value_sql(population, d).label(f"v_{d}") for d in dimensions]
            statement = (
                select(
                    _local_day(population.time, minutes).label("day"),
                    *values,
                    *(DURATION_COLUMNS[d].label(d) for d in DURATIONS),
                )
                .select_from(population.from_clause())
                .where(population.time >= span_begin, population.time < span_end)
            )
            fetched += db.session.execute(statement).all()
        if not fetched:
            continue
        days = [as_date(r[0]) for r in fetched]
        seconds = [
            np.array([r[1 + len(dimensions) + i] for r in fetched], dtype=np.float64)
            for i in range(len(DURATIONS))
        ]
        slices: list[tuple[str, int | None]]
        if "template_version" in dimensions:  # the second read
            slices = [("template_version", 1 + dimensions.index("template_version"))]
            slices.append((VERSIONED, None))
        else:  # the first read: the totals, each combined dimension and the combinations
            slices = [(d, 1 + i) for i, d in enumerate(dimensions)]
            slices += [("", None), ("*", None)]
        for dimension, position in slices:
            if dimension in ("*", VERSIONED):
                places = [1 + dimensions.index(d) for d in dimensions]
                padding = (None,) * (len(BY) - len(places))  # "*": no template version
                combos = [tuple(r[i] for i in places) + padding for r in fetched]
                column: list[Any] = [None] * len(fetched)
            else:
                column = [r[position] for r in fetched] if position else [None] * len(fetched)
                combos = [NO_COMBINATION] * len(fetched)
            codes: dict[tuple[Any, ...], int] = {}
            keys = np.fromiter(
                (
                    codes.setdefault((day, value, combo), len(codes))
                    for day, value, combo in zip(days, column, combos, strict=True)
                ),
                dtype=np.int64,
                count=len(fetched),
            )
            targets = [
                {
                    "day": day,
                    "dimension": dimension,
                    "value": value,
                    "extra": None,
                    **{f"by_{d}": v for d, v in zip(BY, combo, strict=True)},
                }
                for day, value, combo in codes
            ]
            for duration, measured in zip(DURATIONS, seconds, strict=True):
                _store_sorted(duration, keys, measured, targets)
            rows += targets
    return rows


def _store_sorted(
    duration: str, keys: np.ndarray[Any, Any], values: np.ndarray[Any, Any], targets: list[Any]
) -> None:
    """Put each key's measured values of ``duration``, sorted, with their count and sum."""
    measured = ~np.isnan(values)
    group, seconds = keys[measured], values[measured].astype(np.int64)
    order = np.lexsort((seconds, group))
    group, seconds = group[order], seconds[order]
    bounds = np.searchsorted(group, np.arange(len(targets) + 1))
    running = np.concatenate(([0], np.cumsum(seconds)))
    counts = np.diff(bounds).tolist()
    totals = (running[bounds[1:]] - running[bounds[:-1]]).tolist()
    packed = seconds.astype(VALUES_DTYPE).tobytes()
    width = VALUES_DTYPE.itemsize
    for target, start, stop, n, total in zip(
        targets, bounds[:-1].tolist(), bounds[1:].tolist(), counts, totals, strict=True
    ):
        target[f"{duration}_n"] = n
        target[f"{duration}_total"] = total
        target[f"{duration}_values"] = packed[start * width : stop * width]


def _rebuild_days(days: Iterable[date], timezone: str) -> None:
    for first, last in day_runs(days):
        for kind, table in ROLLUP_TABLES.items():
            db.session.execute(delete(table).where(table.c.day >= first, table.c.day <= last))
            if kind == "durations":
                _insert(table, _build_durations(first, last, timezone))
            else:
                _insert_counts(kind, table, first, last, timezone)


def _insert(table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert roll-up rows through the driver's executemany: a rebuild writes hundreds of
    thousands, and the values are already what the columns store (dates, ints, bytes)."""
    if not rows:
        return
    connection = db.session.connection()
    names = [column.name for column in table.columns if column.name != "id"]
    sqlite = connection.dialect.name == "sqlite"
    marks = ", ".join("?" if sqlite else "%s" for _ in names)
    if sqlite:  # SQLite stores a date as its ISO text
        days: dict[date, str] = {}
        for row in rows:
            day = row["day"]
            row["day"] = days.get(day) or days.setdefault(day, day.isoformat())
    values = list(map(itemgetter(*names), rows))
    connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", values
    )


def _data_days(timezone: str) -> list[date]:
    """Every local day from the first to the last instant in any source population."""
    bounds: list[datetime] = []
    for kind in ("responses", "sent", "skipped", "tickets", "sla", "created"):
        population = Population(kind)
        low, high = db.session.execute(
            select(func.min(population.time), func.max(population.time))
        ).one()
        bounds += [value for value in (low, high) if value is not None]
    if not bounds:
        return []
    zone = ZoneInfo(timezone)
    first = min(bounds).astimezone(zone).date()
    last = max(bounds).astimezone(zone).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _timezone() -> str:
    from . import metrics_timezone

    return metrics_timezone(current_app.config)


def rebuild() -> int:
    """Build every roll-up again from the raw rows, in ``METRICS_TIMEZONE``; return the days.

    Commits. Safe to run while data arrives: writes during the rebuild leave dirty
    instants that the next :func:`refresh` rebuilds.
    """
    timezone = _timezone()
    seen = db.session.scalar(select(func.max(DirtyInstant.id)))
    for table in ROLLUP_TABLES.values():
        db.session.execute(delete(table))
    days = _data_days(timezone)
    _rebuild_days(days, timezone)
    if seen is not None:
        db.session.execute(delete(DirtyInstant).where(DirtyInstant.id <= seen))
    state = db.session.get(RollupState, STATE_ID) or RollupState(id=STATE_ID)
    state.timezone, state.built_at = timezone, datetime.now(UTC)
    db.session.add(state)
    db.session.commit()
    log.info("metrics roll-ups rebuilt: %d days (%s)", len(days), timezone)
    return len(days)


def refresh() -> int:
    """The periodic job: rebuild the days that writes made dirty; return how many.

    Builds everything (:func:`rebuild`) when the roll-ups were never built or were
    built in another time zone. Commits.
    """
    state = db.session.get(RollupState, STATE_ID)
    if state is None or state.timezone != _timezone():
        return rebuild()
    dirty = db.session.execute(select(DirtyInstant.id, DirtyInstant.at)).all()
    if not dirty:
        return 0
    zone = ZoneInfo(state.timezone)
    days = {at.astimezone(zone).date() for _id, at in dirty}
    _rebuild_days(days, state.timezone)
    ids = [row_id for row_id, _at in dirty]
    for start in range(0, len(ids), 500):
        db.session.execute(
            delete(DirtyInstant).where(DirtyInstant.id.in_(ids[start : start + 500]))
        )
    db.session.commit()
    return len(days)
