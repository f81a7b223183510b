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
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
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
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement, Label, Null, SQLColumnExpression

from survey_app.extensions import db

from .definitions import DURATIONS
from .populations import DURATION_COLUMNS, Population, population_aggregates
from .rollup_derive import derive, factorize, group_ids
from .rollup_tables import (
    AGGREGATES,
    BY,
    COMBINED,
    PAIRS,
    ROLLUP_TABLES,
    VERSION_IN_COMBINATION,
    VERSIONED,
    WITH_PAIRS,
    DirtyInstant,
    RollupState,
    pair_slice,
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


def driver_rows(statement: Any, *, binary: bool = False) -> list[tuple[Any, ...]]:
    """The rows of ``statement`` as the driver returns them (no result processing: a roll-up
    build reads hundreds of thousands, whose values are already what it writes back).

    ``binary``: on PostgreSQL in the binary format: the duration arrays are ``bytea``, which
    the text format sends as hex (twice the bytes, decoded in Python): a year by channel and
    month reads 16 MB of them, 109 ms as text, 50 as binary."""
    connection = db.session.connection()
    compiled = statement.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    processors: dict[str, Callable[[Any], Any]] = compiled._bind_processors
    params = {
        name: processors[name](value) if name in processors else value
        for name, value in compiled.construct_params().items()
    }
    dbapi: Any = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        with dbapi.cursor(binary=binary) as cursor:  # psycopg's
            cursor.execute(compiled.string, params)
            return list(cursor.fetchall())
    cursor = dbapi.cursor()
    try:
        cursor.execute(compiled.string, [params[name] for name in compiled.positiontup])
        return list(cursor.fetchall())
    finally:
        cursor.close()


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
    """Insert the roll-up rows of ``kind`` for the days ``first``..``last``.

    One grouped ``INSERT … SELECT`` over the raw rows writes the combinations (``"*"``, with
    the template version: a response's or invitation's; a ticket's when it was invited with
    exactly one). For the ticket populations a second one writes the combinations of the
    tickets invited with several versions, once per version (``"*v"``: rare, a ticket closed
    again after a new version was published). Every other slice is a sum of those rows, since
    each raw row lies in exactly one combination of its slice (:func:`_derive`).
    """
    names = AGGREGATES[kind]
    for source in ("*", VERSIONED) if kind in TICKET_KINDS else ("*",):
        statement = _slice_select(kind, source, first, last, timezone)
        if statement is not None:
            db.session.execute(insert(table).from_select(_ROLLUP_KEYS + list(names), statement))
    _derive(table, kind, names, first, last)


#: The ticket populations with a template version: a ticket may have several (``"*v"``).
#: (The heatmap's tickets have none: one is counted once however invited.)
TICKET_KINDS = frozenset({"tickets", "sla", "durations"})
_VERSION_PLACE = BY.index("template_version")


def derived_slices(kind: str) -> list[tuple[str, tuple[str, ...]]]:
    """The slices of ``kind`` summed from its combinations, as (dimension, its dimensions)."""
    pairs = PAIRS if kind in WITH_PAIRS else ()
    candidates = [("", ()), *((d, (d,)) for d in BY), *((pair_slice(*p), p) for p in pairs)]
    if kind == "created":
        return [(name, parts) for name, parts in candidates if "template_version" not in parts]
    return candidates


def with_versions(rows: list[Any], versioned: list[Any], place: int) -> list[Any]:
    """The combination rows that count under a template version: those of ``"*"`` with one
    (at ``place``) and every row of ``"*v"``."""
    return [row for row in rows if row[place] is not None] + versioned


def _derive(table: Any, kind: str, names: Sequence[str], first: date, last: date) -> None:
    """Insert the derived slices of ``kind`` summed from its combination rows of
    ``first``..``last``; for the ticket populations, the slices with the template version
    from :func:`with_versions`, the others from ``"*"`` (a ticket once)."""
    statement = select(
        table.c.dimension,
        table.c.day,
        table.c.extra,
        *(table.c[f"by_{d}"] for d in BY),
        *(table.c[name] for name in names),
    ).where(table.c.dimension.in_(("*", VERSIONED)), table.c.day >= first, table.c.day <= last)
    combinations: list[Any] = []
    versioned: list[Any] = []
    for row in driver_rows(statement):
        (combinations if row[0] == "*" else versioned).append(row[1:])
    slices = derived_slices(kind)
    if kind in TICKET_KINDS:
        by_version = [s for s in slices if "template_version" in s[1]]
        slices = [s for s in slices if "template_version" not in s[1]]
        rows = derive(combinations, len(names), slices)
        rows += derive(
            with_versions(combinations, versioned, 2 + _VERSION_PLACE), len(names), by_version
        )
    else:
        rows = derive(combinations, len(names), slices)
    _insert_tuples(table, _ROLLUP_KEYS + list(names), rows)


def _unlabelled(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return column.element if isinstance(column, Label) else column


#: The key columns of every roll-up row, in the order the grouped selects name them.
_ROLLUP_KEYS = ["day", "dimension", "value", "extra", *(f"by_{d}" for d in BY)]


def _slice_select(kind: str, source: str, first: date, last: date, timezone: str) -> Any | None:
    """The combinations (``source``: ``"*"`` or ``"*v"``) of ``kind``'s raw aggregates by day
    and extra key, as roll-up rows.

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
        if source == VERSIONED:  # first: it joins the versions the combinations read
            where = [*where, population.several_versions()]
        day = _local_day(population.time, minutes).label("day")
        if kind == "created":  # the local hour of the week, counted from Monday 00:00
            extra: ColumnElement[Any] = cast(_local_hour_of_week(population.time, minutes), String)
        elif extra_keys:
            extra = cast(_unlabelled(extra_keys[0]), String)
        else:
            extra = null()
        combination = [
            *(_value_sql(population, d) for d in COMBINED),
            _version_sql(population, kind, source),
        ]
        groups = [day, extra, *combination]
        parts.append(
            select(
                day,
                literal(source, String).label("dimension"),
                null().label("value"),
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


def _version_sql(population: Population, kind: str, source: str) -> ColumnElement[Any]:
    """The template version of a combination: the row's (responses, invitations, ``"*v"``),
    the ticket's only one (``"*"`` of the ticket populations), none (the heatmap's)."""
    if kind in VERSION_IN_COMBINATION or source == VERSIONED:
        return _value_sql(population, "template_version")
    if kind == "created":
        return null()
    return cast(population.single_version(), String)


def _build_durations(first: date, last: date, timezone: str) -> list[tuple[Any, ...]]:
    """The duration roll-up rows of the days ``first``..``last`` (in the columns' order): per
    slice and value, each duration's count, sum and sorted values."""
    zone = ZoneInfo(timezone)
    begin, end = (
        local_midnight(first, timezone),
        local_midnight(last + timedelta(days=1), timezone),
    )
    # Each SLA fact once, with its ticket's only template version ("*"), and again once per
    # version for the tickets invited with several ("*v"), as the counts are built.
    fetched: dict[str, list[Any]] = {"*": [], VERSIONED: []}
    for source, rows in fetched.items():
        for span_begin, span_end, minutes in offset_spans(begin, end, zone):
            population = Population("sla")
            where = [population.several_versions()] if source == VERSIONED else []
            values = [_value_sql(population, d) for d in COMBINED]
            values.append(_version_sql(population, "durations", source))
            statement = (
                select(
                    _local_day(population.time, minutes).label("day"),
                    *values,
                    *(DURATION_COLUMNS[d].label(d) for d in DURATIONS),
                )
                .select_from(population.from_clause())
                .where(population.time >= span_begin, population.time < span_end, *where)
            )
            rows += driver_rows(statement)
    slices = derived_slices("durations")
    by_version = [s for s in slices if "template_version" in s[1]]
    return [
        *_duration_rows(fetched["*"], [*(s for s in slices if s not in by_version), ("*", BY)]),
        *_duration_rows(
            with_versions(fetched["*"], fetched[VERSIONED], 1 + _VERSION_PLACE), by_version
        ),
        *_duration_rows(fetched[VERSIONED], [(VERSIONED, BY)]),
    ]


def _duration_rows(
    fetched: list[Any], slices: Sequence[tuple[str, tuple[str, ...]]]
) -> list[tuple[Any, ...]]:
    """The duration rows of ``slices`` from SLA facts ``(day, <BY values> …, <durations> …)``."""
    if not fetched:
        return []
    columns = list(zip(*fetched, strict=True))
    keys_read = ("day", *BY)
    coded = dict(zip(keys_read, map(factorize, columns[: len(keys_read)]), strict=True))
    seconds = [
        np.array(columns[len(keys_read) + i], dtype=np.float64) for i in range(len(DURATIONS))
    ]
    rows: list[tuple[Any, ...]] = []
    for dimension, parts in slices:
        keys, firsts = group_ids(
            [(coded[name][0], len(coded[name][1])) for name in ("day", *parts)]
        )
        places = [1 + BY.index(name) for name in parts]
        if len(parts) == 1:  # the value, no combination
            heads = [
                (row[0], dimension, row[places[0]], None, *NO_COMBINATION)
                for row in map(fetched.__getitem__, firsts.tolist())
            ]
        else:  # the totals, a pair or a combination: the values in by_<dimension>
            heads = []
            for row in map(fetched.__getitem__, firsts.tolist()):
                by = list(NO_COMBINATION)
                for place in places:
                    by[place - 1] = row[place]
                heads.append((row[0], dimension, None, None, *by))
        stats = [_sorted_values(keys, measured, len(heads)) for measured in seconds]
        rows += [
            (*head, *rest)
            for head, *rest in zip(
                heads,
                *(column for n, total, _blobs in stats for column in (n, total)),
                *(blobs for _n, _total, blobs in stats),
                strict=True,
            )
        ]
    return rows


#: The ``by_<dimension>`` values of rows outside the combined and pair slices.
NO_COMBINATION = (None,) * len(BY)


def _sorted_values(
    keys: np.ndarray[Any, Any], values: np.ndarray[Any, Any], groups: int
) -> tuple[list[int], list[int], list[bytes]]:
    """Per group of ``keys`` (0 … groups − 1): the count, sum and sorted bytes of its
    measured ``values`` (NaN: not measured)."""
    measured = ~np.isnan(values)
    group, seconds = keys[measured], values[measured].astype(np.int64)
    order = np.lexsort((seconds, group))
    group, seconds = group[order], seconds[order]
    bounds = np.searchsorted(group, np.arange(groups + 1))
    running = np.concatenate(([0], np.cumsum(seconds)))
    counts = np.diff(bounds).tolist()
    totals = (running[bounds[1:]] - running[bounds[:-1]]).tolist()
    packed = seconds.astype(VALUES_DTYPE).tobytes()
    width = VALUES_DTYPE.itemsize
    edges = (bounds * width).tolist()
    return counts, totals, [packed[a:b] for a, b in pairwise(edges)]


def _rebuild_days(days: Iterable[date], timezone: str) -> None:
    for first, last in day_runs(days):
        for kind, table in ROLLUP_TABLES.items():
            db.session.execute(delete(table).where(table.c.day >= first, table.c.day <= last))
            if kind == "durations":
                names = [column.name for column in table.columns if column.name != "id"]
                _insert_tuples(table, names, _build_durations(first, last, timezone))
            else:
                _insert_counts(kind, table, first, last, timezone)


def _insert_tuples(table: Any, names: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert roll-up rows (tuples of the ``names`` columns, ``day`` first) through the
    driver's executemany: a rebuild writes hundreds of thousands, and the values are already
    what the columns store (dates, ints, bytes)."""
    if not rows:
        return
    connection = db.session.connection()
    sqlite = connection.dialect.name == "sqlite"
    marks = ", ".join("?" if sqlite else "%s" for _ in names)
    if sqlite:  # SQLite stores a date as its ISO text
        days: dict[Any, str] = {}
        rows = [
            (days.get(row[0]) or days.setdefault(row[0], as_date(row[0]).isoformat()), *row[1:])
            for row in rows
        ]
    connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", rows
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
