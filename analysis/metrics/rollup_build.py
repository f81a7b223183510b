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
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
from sqlalchemy.schema import CreateIndex, DropIndex
from sqlalchemy.sql.elements import ColumnElement, Label, Null, SQLColumnExpression

from survey_app.bulk_io import bulk_memory, sorting_threads
from survey_app.extensions import db

from .definitions import DURATIONS
from .populations import DURATION_COLUMNS, Population, population_aggregates
from .rollup_derive import (
    TICKET_KINDS,
    derived_rows,
    duration_table_rows,
    month_pair_rows,
    month_rows,
)
from .rollup_io import driver_rows, insert_tuples
from .rollup_tables import (
    AGGREGATES,
    BY,
    COMBINED,
    MONTH_PAIRED,
    MONTH_PAIRS,
    MONTHLY,
    ROLLUP_TABLES,
    VALUE_COLUMNS,
    VERSION_IN_COMBINATION,
    VERSIONED,
    WEEKLY,
    WITH_PIECES,
    DirtyInstant,
    RollupState,
    built_indexes,
    first_of_month,
    month_end,
    month_start,
    pair_slice,
    piece_end,
    piece_start,
)
from .scope import local_midnight, offset_spans

log = logging.getLogger(__name__)

#: Days rebuilt per round of queries (bounds memory and the length of a transaction).
CHUNK_DAYS = 31
STATE_ID = 1


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


def piece_runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """The week pieces (:func:`~.rollup_tables.piece_start`) holding ``days``, whole, as runs
    of consecutive days within one month: a chunk so rebuilt sums its pieces from all their
    days (a piece never spans two months)."""
    whole: set[date] = set()
    for start in {piece_start(day) for day in days}:
        end = piece_end(start)
        whole.update(start + timedelta(days=n) for n in range((end - start).days + 1))
    runs: list[tuple[date, date]] = []
    for day in sorted(whole):
        if runs and day == runs[-1][1] + timedelta(days=1) and day.day != 1:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _insert_combinations(
    kind: str, table: Any, first: date, last: date, timezone: str
) -> tuple[list[Any], list[Any]]:
    """Insert the combination rows of ``kind`` for the days ``first``..``last``, in SQL, and
    return them: the ``"*"`` and the ``"*v"`` rows as ``(day, extra, by_<BY> …, aggregates …)``.

    One grouped ``INSERT … SELECT`` over the raw rows writes the combinations (``"*"``, with
    the template version: a response's or invitation's; a ticket's when it was invited with
    exactly one). For the ticket populations a second one writes the combinations of the
    tickets invited with several versions, once per version (``"*v"``: rare, a ticket closed
    again after a new version was published). Every other slice is a sum of those rows, since
    each raw row lies in exactly one combination of its slice (:func:`derived_rows`): they come
    back from the insert itself (``RETURNING``), not from a second read of the table.
    """
    names = AGGREGATES[kind]
    returned = [
        table.c.day,
        table.c.extra,
        *(table.c[f"by_{d}"] for d in BY),
        *(table.c[name] for name in names),
    ]
    found: dict[str, list[Any]] = {"*": [], VERSIONED: []}
    for source in ("*", VERSIONED) if kind in TICKET_KINDS else ("*",):
        statement = _slice_select(kind, source, first, last, timezone)
        if statement is not None:
            written = insert(table).from_select(_ROLLUP_KEYS + list(names), statement)
            found[source] = driver_rows(written.returning(*returned))
    return found["*"], found[VERSIONED]


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
        # Grouped and written in the index's order: a read of a team (and more filters)
        # then finds the day's matching rows close together in the table (on PostgreSQL a
        # year of the invitations' with three filters touched 9,557 table pages, 2,057
        # so written: 32 -> 17 ms); SQLite's grouping sorts in this order anyway.
        by_name = dict(zip(BY, combination, strict=True))
        groups = [day, *(by_name[column[3:]] for column in VALUE_COLUMNS), extra]
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
        order = [g for g in groups if not isinstance(g, Null)]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0].order_by(*order)
    spans = union_all(*parts).subquery()
    keys = [spans.c[k] for k in ("day", "dimension", "value", *VALUE_COLUMNS, "extra")]
    return (
        select(
            *(spans.c[k] for k in _ROLLUP_KEYS), *(func.sum(spans.c[n]).label(n) for n in names)
        )
        .group_by(*keys)
        .order_by(*keys)
    )


def _version_sql(population: Population, kind: str, source: str) -> ColumnElement[Any]:
    """The template version of a combination: the row's (responses, invitations, ``"*v"``),
    the ticket's only one (``"*"`` of the ticket populations)."""
    if kind in VERSION_IN_COMBINATION or source == VERSIONED:
        return _value_sql(population, "template_version")
    return cast(population.single_version(), String)


def _read_durations(first: date, last: date, timezone: str) -> dict[str, list[Any]]:
    """The SLA facts of the days ``first``..``last``: ``(day, <BY values> …, <durations> …)``
    under ``"*"`` (each once, with its ticket's only template version) and ``"*v"``."""
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
    return fetched


def _rebuild_days(
    days: Iterable[date], timezone: str, *, emptied: bool = False, commit: bool = False
) -> None:
    """Rebuild the roll-ups of ``days`` and of the other days of their week pieces, a month's
    days at most at a time (:func:`piece_runs`). The database work stays
    on this thread and connection (it sees the transaction's own writes); the sums and sorts
    of each population run on a second thread while the next population's SQL runs here
    (the drivers and numpy release the GIL while they work). With more memory
    (:func:`~survey_app.bulk_io.bulk_memory`): on SQLite a first build at a million
    responses took 232 s with the default page cache, 212 s with 256 MB.

    ``emptied``: the tables hold nothing yet (:func:`rebuild`), so no chunk's old rows are
    deleted first (during a first build, without indexes, each such delete scanned a table).
    ``commit``: commit after each chunk.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollups") as pool:
        for first, last in piece_runs(days):
            with bulk_memory(sqlite_cache_mib=256, postgres_work_mem_mib=64):
                _rebuild_chunk(pool, first, last, timezone, emptied=emptied)
            if commit:
                db.session.commit()


def _rebuild_chunk(
    pool: ThreadPoolExecutor, first: date, last: date, timezone: str, *, emptied: bool
) -> None:
    """Rebuild the roll-ups of the days ``first``..``last`` (:func:`_rebuild_days`); ``emptied``
    (all days): the chunk is a whole month, whose month pieces it sums too (else
    :func:`_rebuild_month_pieces`)."""
    computed: list[tuple[Any, list[str], Future[list[tuple[Any, ...]]]]] = []
    for kind, table in ROLLUP_TABLES.items():
        if not emptied:
            db.session.execute(delete(table).where(table.c.day >= first, table.c.day <= last))
        if kind == "durations":
            names = [column.name for column in table.columns if column.name != "id"]
            fetched = _read_durations(first, last, timezone)
            job = pool.submit(duration_table_rows, fetched, months=emptied)
            computed.append((table, names, job))
            continue
        aggregates = AGGREGATES[kind]
        combinations, versioned = _insert_combinations(kind, table, first, last, timezone)
        job = pool.submit(
            derived_rows, kind, len(aggregates), combinations, versioned, months=emptied
        )
        computed.append((table, _ROLLUP_KEYS + list(aggregates), job))
    for table, names, job in computed:
        insert_tuples(table, names, job.result())
    if not emptied:
        _rebuild_month_pieces(first)


def _rebuild_month_pieces(day: date) -> None:
    """Sum the month pieces of ``day``'s month again from its stored week pieces, and its
    pairs by month (:data:`~.rollup_tables.MONTH_PAIRED`) from its combinations."""
    first, last = first_of_month(day), month_end(day)
    for kind in sorted(WITH_PIECES):
        table = ROLLUP_TABLES[kind]
        db.session.execute(delete(table).where(table.c.dimension == MONTHLY, table.c.day == first))
        if kind == "durations":
            names = [c.name for c in table.columns if c.name != "id"]
            read = [n for n in names if n not in ("dimension", "value", "extra")]
        else:
            names = _ROLLUP_KEYS + list(AGGREGATES[kind])
            read = ["day", "extra", *(f"by_{d}" for d in BY), *AGGREGATES[kind]]
        weekly = select(*(table.c[n] for n in read)).where(
            table.c.dimension == WEEKLY, table.c.day >= first, table.c.day <= last
        )
        insert_tuples(table, names, month_rows(kind, driver_rows(weekly, binary=True)))
    for kind in sorted(MONTH_PAIRED):  # and its pairs from its combinations (month-keyed)
        table = ROLLUP_TABLES[kind]
        pairs = [pair_slice(*pair) for pair in MONTH_PAIRS[kind]]
        month = [month_start(table.c.day) == first, table.c.day >= first, table.c.day <= last]
        db.session.execute(delete(table).where(table.c.dimension.in_(pairs), *month))
        read = ["day", "extra", *(f"by_{d}" for d in BY), *AGGREGATES[kind]]
        found = {
            source: driver_rows(
                select(*(table.c[n] for n in read)).where(table.c.dimension == source, *month)
            )
            for source in ("*", VERSIONED)
        }
        rows = month_pair_rows(kind, len(AGGREGATES[kind]), found["*"], found[VERSIONED])
        insert_tuples(table, _ROLLUP_KEYS + list(AGGREGATES[kind]), rows)


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
    # Built for the first time (or emptied by a migration): no view reads the tables, so their
    # indexes are built once at the end instead of entry by entry (about a fifth of the
    # inserts' time). A rebuild over built roll-ups keeps them: views read them meanwhile.
    first = db.session.get(RollupState, STATE_ID) is None
    connection = db.session.connection()
    if first and connection.dialect.name == "postgresql":
        # Emptied, not deleted row by row: deleted rows stay in the table until a vacuum, and
        # the index builds below would read them all (2.5 times as long). TRUNCATE locks
        # the tables until the commit, as dropping their indexes does.
        names = ", ".join(table.name for table in ROLLUP_TABLES.values())
        connection.exec_driver_sql(f"TRUNCATE {names}")
    else:
        for table in ROLLUP_TABLES.values():
            db.session.execute(delete(table))
    days = _data_days(timezone)
    dialect = connection.dialect.name
    indexes = (
        [index for table in ROLLUP_TABLES.values() for index in built_indexes(table, dialect)]
        if first
        else []
    )
    for index in indexes:  # (IF EXISTS: SQLite cannot reflect an expression index to check)
        connection.execute(DropIndex(index, if_exists=True))
    # A first build commits each chunk of days (nothing reads the tables before the state
    # row below says they are built; one stopped midway starts again from the start): in
    # one transaction of gigabytes, SQLite looked every page it read up in a write-ahead
    # log of that size, and the build slowed as it went.
    _rebuild_days(days, timezone, emptied=True, commit=first)
    connection = db.session.connection()
    with sorting_threads():
        for index in indexes:
            connection.execute(CreateIndex(index, if_not_exists=True))
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
    state.built_at = datetime.now(UTC)  # what readers keep between requests is stale now
    db.session.commit()
    return len(days)
