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
    literal_column,
    select,
)
from sqlalchemy.sql.elements import ColumnElement, SQLColumnExpression

from survey_app.extensions import db

from .definitions import DURATIONS
from .populations import DURATION_COLUMNS, Population, population_aggregates
from .rollup_tables import (
    AGGREGATES,
    COMBINED,
    EXTRA_KEYS,
    ROLLUP_TABLES,
    DirtyInstant,
    RollupState,
)
from .scope import DIMENSIONS, local_midnight, offset_spans

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


def _local_hour(column: SQLColumnExpression[Any], minutes: int) -> ColumnElement[Any]:
    """The local hour (0–23) of a UTC instant at a fixed offset, as an integer."""
    if db.session.get_bind().dialect.name == "sqlite":
        return cast(func.strftime("%H", column, f"{minutes:+d} minutes"), Integer)
    shifted = func.timezone("UTC", column) + literal_column(f"INTERVAL '{int(minutes)} minutes'")
    return cast(func.extract("hour", shifted), Integer)


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


def _build_counts(kind: str, first: date, last: date, timezone: str) -> list[dict[str, Any]]:
    """The roll-up rows of ``kind`` for the days ``first``..``last``, from the raw rows.

    Two grouped queries over the raw rows: the combinations (``"*"``) and the template version
    (not for the heatmap's ``created`` tickets). The totals and the slices of the other
    dimensions are sums of the combination rows (numpy), since each raw row lies in exactly
    one combination.
    """
    names = AGGREGATES[kind]
    rows: list[dict[str, Any]] = []
    # The heatmap's tickets have no template version (one counted once however invited).
    read = ("*",) if kind == "created" else ("*", "template_version")
    for dimension in read:
        keys, sums = _slice_sums(kind, dimension, first, last, timezone)
        rows += _slice_rows(dimension, keys, sums, names)
        if dimension != "*" or not keys:
            continue
        for derived in ("", *COMBINED):
            place = COMBINED.index(derived) if derived else None
            codes: dict[tuple[Any, ...], int] = {}
            index = np.fromiter(
                (
                    codes.setdefault(
                        (day, None if place is None else combo[place], extra, NO_COMBINATION),
                        len(codes),
                    )
                    for day, _value, extra, combo in keys
                ),
                dtype=np.int64,
                count=len(keys),
            )
            totals = np.zeros((len(codes), len(names)), dtype=np.int64)
            np.add.at(totals, index, sums)
            rows += _slice_rows(derived, list(codes), totals, names)
    return rows


def _slice_sums(
    kind: str, dimension: str, first: date, last: date, timezone: str
) -> tuple[list[tuple[Any, ...]], np.ndarray[Any, Any]]:
    """One slice's raw aggregates by (day, value, extra, combination): keys and a sums matrix."""
    zone = ZoneInfo(timezone)
    begin = local_midnight(first, timezone)
    end = local_midnight(last + timedelta(days=1), timezone)
    names = AGGREGATES[kind]
    found: dict[tuple[Any, ...], list[int]] = {}
    for span_begin, span_end, minutes in offset_spans(begin, end, zone):
        population = Population(kind)
        aggregates, extra_keys, where = population_aggregates(kind, distributions=True)
        keys: list[ColumnElement[Any]] = [_local_day(population.time, minutes).label("day")]
        if dimension == "*":
            keys += [_value_sql(population, d).label(f"by_{d}") for d in COMBINED]
        elif dimension:
            keys.append(_value_sql(population, dimension).label("value"))
        keys += list(extra_keys)
        if kind == "created":
            keys.append(_local_hour(population.time, minutes).label("hour"))
        statement = (
            select(*keys, *aggregates)
            .select_from(population.from_clause())
            .where(population.time >= span_begin, population.time < span_end, *where)
            .group_by(*keys)
        )
        for row in db.session.execute(statement).mappings():
            extra = row[EXTRA_KEYS[kind]] if kind in EXTRA_KEYS else None
            day = as_date(row["day"])
            if kind == "created":  # the local hour of the week, counted from Monday 00:00
                extra = day.weekday() * 24 + int(row["hour"])
            key = (
                day,
                row["value"] if dimension not in ("", "*") else None,
                None if extra is None else text_value(extra),
                _combination(row) if dimension == "*" else NO_COMBINATION,
            )
            sums = found.setdefault(key, [0] * len(names))  # a day cut by an offset change
            for index, name in enumerate(names):
                sums[index] += int(row[name] or 0)
    matrix = np.array(list(found.values()), dtype=np.int64).reshape(len(found), len(names))
    return list(found), matrix


def _slice_rows(
    dimension: str, keys: list[tuple[Any, ...]], sums: np.ndarray[Any, Any], names: Sequence[str]
) -> list[dict[str, Any]]:
    return [
        {
            "day": day,
            "dimension": dimension,
            "value": value,
            "extra": extra,
            **{f"by_{d}": v for d, v in zip(COMBINED, combo, strict=True)},
            **dict(zip(names, map(int, row), strict=True)),
        }
        for (day, value, extra, combo), row in zip(keys, sums, strict=True)
    ]


#: The ``by_<dimension>`` values of rows outside the combined slice.
NO_COMBINATION = (None,) * len(COMBINED)


def _combination(row: Any) -> tuple[Any, ...]:
    return tuple(row[f"by_{d}"] for d in COMBINED)


def _build_durations(first: date, last: date, timezone: str) -> list[dict[str, Any]]:
    """The duration roll-up rows of the days ``first``..``last``: per slice and value, each
    duration's count, sum and sorted values."""
    zone = ZoneInfo(timezone)
    begin, end = (
        local_midnight(first, timezone),
        local_midnight(last + timedelta(days=1), timezone),
    )
    rows: list[dict[str, Any]] = []
    # One read per group of slices: the template version multiplies a ticket by its versions.
    for dimensions in (
        [d for d in DIMENSIONS if d != "template_version"],
        ["template_version"],
    ):
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
        slices: list[tuple[str, int | None]] = [(d, 1 + i) for i, d in enumerate(dimensions)]
        if dimensions != ["template_version"]:  # the first read: the totals and the combinations
            slices += [("", None), ("*", None)]
        for dimension, position in slices:
            if dimension == "*":
                places = [1 + dimensions.index(d) for d in COMBINED]
                combos = [tuple(r[i] for i in places) for r in fetched]
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
                    **{f"by_{d}": v for d, v in zip(COMBINED, combo, strict=True)},
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
    for code, target in enumerate(targets):
        start, stop = int(bounds[code]), int(bounds[code + 1])
        target[f"{duration}_n"] = stop - start
        target[f"{duration}_total"] = int(running[stop] - running[start])
        target[f"{duration}_values"] = seconds[start:stop].astype(VALUES_DTYPE).tobytes()


def _rebuild_days(days: Iterable[date], timezone: str) -> None:
    for first, last in day_runs(days):
        for kind, table in ROLLUP_TABLES.items():
            db.session.execute(delete(table).where(table.c.day >= first, table.c.day <= last))
            if kind == "durations":
                rows = _build_durations(first, last, timezone)
            else:
                rows = _build_counts(kind, first, last, timezone)
            _insert(table, rows)


def _insert(table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert roll-up rows through the driver's executemany: a rebuild writes hundreds of
    thousands, and the values are already what the columns store (dates, ints, bytes)."""
    if not rows:
        return
    connection = db.session.connection()
    names = [column.name for column in table.columns if column.name != "id"]
    sqlite = connection.dialect.name == "sqlite"
    marks = ", ".join("?" if sqlite else "%s" for _ in names)
    values = [
        tuple(
            value.isoformat() if sqlite and isinstance(value, date) else value
            for value in (row.get(name) for name in names)
        )
        for row in rows
    ]
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
