"""Daily roll-ups: every KPI view that filters and groups by at most one dimension, exact and fast.

A million responses over a year are a few hundred roll-up rows per day
(:mod:`analysis.metrics.rollup_tables`): the day's totals, and for each
dimension one row per value. :func:`plan` decides whether a view can be
answered from them: the roll-ups are built (``closedloop metrics rebuild``, or
the ``refresh-metrics`` job on its first round) in the scope's time zone, and the
scope's filters and its ``group_by`` name at most one dimension between them.
Anything else (two dimensions, another time zone) reads the raw rows, as before.

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

Local days come from UTC instants with the zone's UTC offset, taken in spans
over which the offset does not change (:func:`offset_spans`), so SQLite and
PostgreSQL give the same days whatever the daylight-saving rules.
"""

from __future__ import annotations

import dataclasses
import logging
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from flask import current_app
from sqlalchemy import (
    Date,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.sql.elements import ColumnElement, SQLColumnExpression

from survey_app.extensions import db

from .definitions import DURATIONS, PERCENTILES, percentile_ranks
from .engine import DURATION_COLUMNS, Population, population_aggregates
from .rollup_tables import (
    AGGREGATES,
    COMBINED,
    EXTRA_KEYS,
    ROLLUP_TABLES,
    DirtyInstant,
    RollupState,
)
from .scope import DIMENSIONS, Grain, Scope, local_midnight

log = logging.getLogger(__name__)

#: The slices of each day: its totals ("") and each dimension.
SLICES = ("", *DIMENSIONS)
#: Days rebuilt per round of queries (bounds memory and the length of a transaction).
CHUNK_DAYS = 31
_STATE_ID = 1
#: Duration arrays are stored as little-endian 32-bit integers.
_VALUES = np.dtype("<i4")


# --- local days --------------------------------------------------------------------------------


def _offset_minutes(at: datetime, zone: ZoneInfo) -> int:
    offset = at.astimezone(zone).utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


def offset_spans(
    begin: datetime, end: datetime, zone: ZoneInfo
) -> list[tuple[datetime, datetime, int]]:
    """``[begin, end)`` cut where ``zone``'s UTC offset changes: ``(begin, end, minutes)`` each."""
    spans: list[tuple[datetime, datetime, int]] = []
    cursor = begin
    while cursor < end:
        offset = _offset_minutes(cursor, zone)
        low, change = cursor, None
        while low < end:
            high = min(low + timedelta(hours=12), end)
            probe = high if high < end else end - timedelta(seconds=1)
            if probe > low and _offset_minutes(probe, zone) != offset:
                # The offset changes in (low, probe]: find the first second with the new one.
                while probe - low > timedelta(seconds=1):
                    middle = low + (probe - low) / 2
                    middle = middle.replace(microsecond=0)
                    if middle <= low:
                        break
                    if _offset_minutes(middle, zone) == offset:
                        low = middle
                    else:
                        probe = middle
                change = probe
                break
            low = high
        if change is None:
            spans.append((cursor, end, offset))
            break
        spans.append((cursor, change, offset))
        cursor = change
    return spans


def _local_day(column: SQLColumnExpression[Any], minutes: int) -> ColumnElement[Any]:
    if db.session.get_bind().dialect.name == "sqlite":  # naive UTC text
        return func.date(column, f"{minutes:+d} minutes")
    shifted = func.timezone("UTC", column) + literal_column(f"INTERVAL '{int(minutes)} minutes'")
    return cast(shifted, Date)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _value_text(population: Population, dimension: str) -> ColumnElement[Any]:
    column = population.column(dimension)
    if dimension == "customer_is_new":
        return case((column.is_(True), "true"), (column.is_(False), "false"))
    return cast(column, String)


def _typed(dimension: str | None, value: str | None) -> Any:
    """A roll-up's text value as the raw queries' group key has it."""
    if value is None:
        return None
    if dimension == "template_version":
        return int(value)
    if dimension == "customer_is_new":
        return value == "true"
    return value


def _text(value: Any) -> str:
    value = getattr(value, "value", value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- building ----------------------------------------------------------------------------------


def _runs(days: Iterable[date]) -> list[tuple[date, date]]:
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
    """The roll-up rows of ``kind`` for the days ``first``..``last``, from the raw rows."""
    zone = ZoneInfo(timezone)
    begin, end = (
        local_midnight(first, timezone),
        local_midnight(last + timedelta(days=1), timezone),
    )
    totals: dict[tuple[Any, ...], list[int]] = {}
    names = AGGREGATES[kind]
    for dimension in (*SLICES, "*"):
        for span_begin, span_end, minutes in offset_spans(begin, end, zone):
            population = Population(kind)
            aggregates, extra_keys, where = population_aggregates(kind, distributions=True)
            day = _local_day(population.time, minutes).label("day")
            keys: list[ColumnElement[Any]] = [day]
            if dimension == "*":
                keys += [_value_text(population, d).label(f"by_{d}") for d in COMBINED]
            elif dimension:
                keys.append(_value_text(population, dimension).label("value"))
            keys += list(extra_keys)
            statement = (
                select(*keys, *aggregates)
                .select_from(population.from_clause())
                .where(population.time >= span_begin, population.time < span_end, *where)
                .group_by(*keys)
            )
            for row in db.session.execute(statement).mappings():
                extra = row[EXTRA_KEYS[kind]] if kind in EXTRA_KEYS else None
                key = (
                    _as_date(row["day"]),
                    dimension,
                    row["value"] if dimension not in ("", "*") else None,
                    None if extra is None else _text(extra),
                    tuple(row[f"by_{d}"] for d in COMBINED)
                    if dimension == "*"
                    else _NO_COMBINATION,
                )
                sums = totals.setdefault(key, [0] * len(names))
                for index, name in enumerate(names):
                    sums[index] += int(row.get(name) or 0)
    return [
        {
            "day": key[0],
            "dimension": key[1],
            "value": key[2],
            "extra": key[3],
            **{f"by_{d}": value for d, value in zip(COMBINED, key[4], strict=True)},
            **dict(zip(names, sums, strict=True)),
        }
        for key, sums in totals.items()
    ]


#: The ``by_<dimension>`` values of rows outside the combined slice.
_NO_COMBINATION = (None,) * len(COMBINED)


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
            values = [_value_text(population, d).label(f"v_{d}") for d in dimensions]
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
        days = [_as_date(r[0]) for r in fetched]
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
                combos = [_NO_COMBINATION] * len(fetched)
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
        target[f"{duration}_values"] = seconds[start:stop].astype(_VALUES).tobytes()


def _rebuild_days(days: Iterable[date], timezone: str) -> None:
    for first, last in _runs(days):
        for kind, table in ROLLUP_TABLES.items():
            db.session.execute(delete(table).where(table.c.day >= first, table.c.day <= last))
            if kind == "durations":
                rows = _build_durations(first, last, timezone)
            else:
                rows = _build_counts(kind, first, last, timezone)
            if rows:
                db.session.execute(insert(table), rows)


def _data_days(timezone: str) -> list[date]:
    """Every local day from the first to the last instant in any source population."""
    bounds: list[datetime] = []
    for kind in ("responses", "sent", "skipped", "tickets", "sla"):
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
    state = db.session.get(RollupState, _STATE_ID) or RollupState(id=_STATE_ID)
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
    state = db.session.get(RollupState, _STATE_ID)
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


# --- reading -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a view reads the roll-ups: which slice, which of its values, which days raw."""

    scope: Scope
    #: The slice: "" (totals), a dimension, or "*" (combinations).
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
            for first, last in _runs(self.dirty)
        ]
        return [or_(*ranges)]


def plan(scope: Scope, group_by: str | None) -> Plan | None:
    """How to answer ``scope`` grouped by ``group_by`` from the roll-ups; None: read raw rows."""
    filters = scope.filters()
    involved = set(filters) | ({group_by} if group_by is not None else set())
    if len(involved) > 1 and not involved <= set(COMBINED):
        return None
    state = db.session.get(RollupState, _STATE_ID)
    if state is None or state.timezone != scope.timezone:
        return None
    if len(involved) > 1:
        dimension = "*"
        columns = {name: f"by_{name}" for name in involved}
    else:
        dimension = next(iter(involved), "")
        columns = {dimension: "value"} if dimension else {}
    accepted = {columns[name]: tuple(_text(v) for v in values) for name, values in filters.items()}
    group_column = columns[group_by] if group_by is not None else None
    zone = scope.zone
    begin, end = scope.bounds
    instants = db.session.scalars(
        select(DirtyInstant.at).where(DirtyInstant.at >= begin, DirtyInstant.at < end).distinct()
    )
    dirty = frozenset(at.astimezone(zone).date() for at in instants)
    return Plan(scope, dimension, accepted, group_column, dirty)


def _period_labels(scope: Scope, grain: Grain | None) -> dict[date, str | None]:
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


def _period(table: Any, scope: Scope, grain: Grain | None) -> ColumnElement[Any] | None:
    """The period label of a roll-up row's day, in SQL (buckets are runs of days)."""
    if grain is None:
        return None
    labels = _period_labels(scope, grain)
    if grain == "day":
        return table.c.day
    firsts: dict[str, date] = {}
    for day, label in labels.items():
        firsts.setdefault(str(label), day)
    bounds = sorted((first, label) for label, first in firsts.items())
    whens = [(table.c.day < following, label) for (_f, label), (following, _l) in pairwise(bounds)]
    return case(*whens, else_=bounds[-1][1]) if whens else literal(bounds[0][1], String())


def _rollup_select(
    plan: Plan, kind: str, columns: Sequence[Any], group_by: str | None, grain: Grain | None
) -> tuple[Any, list[ColumnElement[Any]]]:
    """SELECT of ``columns`` from ``kind``'s roll-ups in the plan's slice, clean days only,
    with its group keys: ``value`` (if grouped), ``period`` (if a grain), ``extra``."""
    table = ROLLUP_TABLES[kind]
    conditions = [
        table.c.dimension == plan.dimension,
        table.c.day >= plan.scope.start,
        table.c.day <= plan.scope.end,
    ]
    for column, values in plan.filters.items():
        conditions.append(table.c[column].in_(values))
    if plan.dirty:
        conditions.append(table.c.day.not_in(sorted(plan.dirty)))
    period = _period(table, plan.scope, grain)
    group = table.c[plan.group_column] if plan.group_column is not None else None
    selected = [
        (group if group is not None else literal_column("NULL")).label("value"),
        (period if period is not None else literal_column("NULL")).label("period"),
        table.c.extra.label("extra"),
    ]
    keys = [key for key in (group, period, table.c.extra) if key is not None]
    return select(*selected, *columns).where(*conditions), keys


def _label(value: Any) -> str | None:
    return (
        None
        if value is None
        else _as_date(value).isoformat()
        if not isinstance(value, str)
        else value
    )


def grouped_rows(
    plan: Plan,
    kind: str,
    group_by: str | None,
    grain: Grain | None,
    raw: Callable[[Sequence[ColumnElement[bool]]], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """The rows the raw query of ``kind`` would return (``_group``, ``_period``, extra key and
    aggregates), from the roll-ups of clean days plus ``raw`` over the dirty days."""
    table = ROLLUP_TABLES[kind]
    names = AGGREGATES[kind]
    extra = EXTRA_KEYS.get(kind)
    sums = [func.sum(table.c[n]).label(n) for n in names]
    statement, keys = _rollup_select(plan, kind, sums, group_by, grain)
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}

    def add(key: tuple[Any, ...], values: Iterable[tuple[str, Any]]) -> None:
        target = merged.get(key)
        if target is None:
            target = merged[key] = {"_group": key[0], "_period": key[1], **dict.fromkeys(names, 0)}
            if extra is not None:
                target[extra] = key[2]
        for name, value in values:
            target[name] += int(value or 0)

    for stored in db.session.execute(statement.group_by(*keys)):
        group = _typed(group_by, stored[0])
        add((group, _label(stored[1]), stored[2]), zip(names, stored[3:], strict=True))
    if plan.dirty:
        time = Population(kind).time
        for row in raw(plan.dirty_conditions(time)):
            group = getattr(row["_group"], "value", row["_group"])
            extra_value = None if extra is None else _text(row[extra])
            add((group, row["_period"], extra_value), ((n, row[n]) for n in names if n in row))
    if not merged and extra is None and group_by is None and grain is None:
        merged[(None, None, None)] = {"_group": None, "_period": None, **dict.fromkeys(names, 0)}
    return list(merged.values())


def percentile_rows(
    plan: Plan,
    duration: str,
    group_by: str | None,
    grain: Grain | None,
    raw: Callable[[Sequence[ColumnElement[bool]]], list[tuple[Any, datetime, int]]],
) -> list[dict[str, Any]]:
    """n, Σ and the values at each percentile's interpolation ranks, per group, as the raw
    query returns them: from the sorted arrays of clean days plus ``raw`` values of dirty days."""
    table = ROLLUP_TABLES["durations"]
    labels = _period_labels(plan.scope, grain)
    statement, _keys = _rollup_select(
        plan, "durations", [table.c[f"{duration}_values"]], group_by, grain
    )
    blobs: dict[tuple[Any, str | None], list[bytes]] = {}
    for value, period, _extra, blob in db.session.execute(
        statement.where(table.c[f"{duration}_n"] > 0)
    ):
        blobs.setdefault((_typed(group_by, value), _label(period)), []).append(blob)
    parts = {
        key: [np.frombuffer(b"".join(chunks), dtype=_VALUES).astype(np.int64)]
        for key, chunks in blobs.items()
    }
    if plan.dirty:
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
