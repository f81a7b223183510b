"""The tables behind the KPI roll-ups (:mod:`analysis.metrics.rollup`).

One table per population, one row per (local day, slice, value, extra key):

* ``dimension`` is ``""`` for the day's totals, else the name of one dimension
  of :data:`~analysis.metrics.scope.DIMENSIONS`; ``value`` is that dimension's
  value as text (``None`` for rows without one), so every view that filters
  and groups by at most one dimension reads a few rows per day;
* ``dimension`` ``"*"`` is the combined slice: one row per combination of the
  values of :data:`COMBINED`, in the ``by_<dimension>`` columns (and of the template
  version for the populations of :data:`VERSION_IN_COMBINATION`); ``"*v"``
  (:data:`VERSIONED`) the ticket populations' combinations with the template version;
* ``dimension`` ``"*w"`` (:data:`WEEKLY`) is the combinations without the agent summed over
  the days of a week piece (:func:`piece_start`: a week, cut at the end of a month), ``day``
  its first day: a view over months with three filters reads a few rows per piece instead
  of one per response and day (:mod:`analysis.metrics.rollup`); ``"*m"`` (:data:`MONTHLY`)
  the same over a month (``day`` its 1st), a third of its week pieces' rows;
* ``dimension`` ``"a|b"`` (:func:`pair_slice`) is a pair of the dimensions of :data:`PAIRED`:
  one row per day and pair of values, in ``by_a`` and ``by_b``. A view that filters and groups
  by two dimensions (a version in one team, one channel by template version) reads a few rows
  per day instead of every combination; for the ticket populations the pairs with the
  template version are summed from ``"*v"``;
* the populations without pairs by day keep some by month (:data:`MONTH_PAIRS`: ``"a|b"``
  rows whose ``day`` is the month's first);
* ``extra`` is the skip reason (skipped invitations), the priority (SLA facts), the keyword
  (keywords) or the survey dimension (aspects);
* the other columns are the SQL aggregates of
  :mod:`analysis.metrics.definitions`, under the same names, so a roll-up row
  and a raw aggregate row are summed alike;
* the durations table (``metric_rollup_durations``, built from the SLA facts
  without the priority split) keeps, per duration, its count, sum and values as a
  sorted array of 32-bit integers (``<duration>_values``): percentiles stay exact.

``metric_dirty`` receives, from database triggers on every write to the source
tables, the instants whose local day a write may have changed;
``metric_rollup_state`` says which time zone the roll-ups were built in.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import combinations
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from survey_app.extensions import Model
from survey_app.types import UTCDateTime, utcnow

from .definitions import CSAT_DIMENSIONS, DURATIONS
from .distributions import DISTRIBUTION_NAMES
from .scope import DIMENSIONS

#: The aggregate columns of each population (the labels of the raw aggregate queries).
AGGREGATES: dict[str, tuple[str, ...]] = {
    "responses": (
        "responses",
        *(f"csat_{d}_{part}" for d in CSAT_DIMENSIONS for part in ("n", "sum", "satisfied")),
        "nps_n",
        "nps_promoters",
        "nps_detractors",
        "ces_n",
        "ces_sum",
        "ces_easy",
        *DISTRIBUTION_NAMES,
    ),
    "sent": ("sent", "answered"),
    "skipped": ("count",),
    "tickets": ("closed", "first_contact_resolved", "reopened", "contacts"),
    "sla": ("sla_measured", "sla_breached"),
    "durations": tuple(f"{d}_{part}" for d in DURATIONS for part in ("n", "total")),
    # tickets by local day and hour of creation with a first response (the FRT heatmap)
    "created": ("n", "seconds", "elapsed"),
    # the responses mentioning each keyword of their comments, and of them the negative ones
    # (the dashboard's themes); each survey dimension's mentions in comments, by sentiment
    "keywords": ("count", "negative"),
    "aspects": ("mentions", "positive", "negative"),
}
#: The dimensions of the combined slice (``dimension = "*"``): one row per day and combination
#: of their values, in the ``by_<dimension>`` columns, for views that filter or group by two or
#: more of them. The template version is handled apart (a ticket may have several: see
#: :data:`VERSION_IN_COMBINATION` and :data:`VERSIONED`). An agent works in one team, mostly on
#: a few channels, so the agent adds few combinations: a day has at most as many as it has rows.
COMBINED = tuple(d for d in DIMENSIONS if d != "template_version")
#: The ``by_<dimension>`` columns: the combined dimensions and the template version.
BY = (*COMBINED, "template_version")
#: Populations whose rows carry one template version each (responses, invitations): their
#: combined slice splits by it too (``by_template_version``), and their template-version slice
#: is summed from it like the others.
VERSION_IN_COMBINATION = frozenset({"responses", "sent", "skipped", "keywords", "aspects"})
#: The ticket populations' slice of combinations with the template version: a ticket invited
#: with several versions counts once under each, as the raw queries count it, so these rows
#: are kept apart from ``"*"`` (whose rows must add up to the day's totals).
VERSIONED = "*v"
#: The slice of week pieces: the ``"*"`` rows of the populations of :data:`WITH_PIECES` summed
#: per week piece (:func:`piece_start`) and combination of :data:`PIECE_DIMENSIONS`. A day's
#: combinations are about as many as its rows (the agent and eight more dimensions), so a
#: year with three filters read 18,000 of them; a week's, without the agent, a quarter.
WEEKLY = "*w"
#: The slice of month pieces: the same sums over a month (``day`` its first day). A month's
#: combinations without the agent are about a third of its week pieces' (74,000 against
#: 254,000 a year of the benchmark's responses), for the reads that need no week: by month
#: or none (a page's breakdown, cards and trend over a year).
MONTHLY = "*m"
#: The dimensions of the week pieces: the combined ones but the agent (a view with the agent
#: reads the day's combinations; one agent's are few).
PIECE_DIMENSIONS = tuple(d for d in BY if d != "agent")


def piece_start(day: date) -> date:
    """The first day of ``day``'s week piece: its week's Monday, or the 1st of its month when
    the week began in the month before. A piece lies in one week and one month, so a week's
    and a month's totals are sums of whole pieces."""
    return max(day - timedelta(days=day.weekday()), day.replace(day=1))


def piece_end(start: date) -> date:
    """The last day of the week piece beginning on ``start``: its Sunday or its month's end."""
    return min(start + timedelta(days=6 - start.weekday()), month_end(start))


#: The dimensions whose every pair has a slice of its own (:func:`pair_slice`). Not the agent:
#: an organisation has hundreds, and an agent's pairs would be about as many rows as the
#: combinations, which serve a view on one agent with another dimension.
PAIRED = tuple(d for d in BY if d != "agent")
#: The agent's one pair: with the team (a team's agents, one agent of a team). An agent works
#: in one team, so the slice has about the agent slice's rows: a year of a team by agent read
#: 240,000 combinations with their durations (1.8 s a page on SQLite).
AGENT_PAIRS: tuple[tuple[str, str], ...] = (("team", "agent"),)
PAIRS: tuple[tuple[str, str], ...] = (*combinations(PAIRED, 2), *AGENT_PAIRS)
#: The populations whose pairs are kept. Not the skipped invitations (split by reason), the
#: heatmap's tickets (by hour of the week), the keywords and the aspects: their pairs of
#: values, times the extra key, are more rows a day than their combinations, which answer a
#: two-dimension view instead.
WITH_PAIRS = frozenset({"responses", "sent", "tickets", "sla", "durations"})
#: The populations with week pieces: the same, for the same reason. Split by their extra key
#: (the hour of the week, a keyword, …) the other populations' pieces were 85-98 % as many
#: rows as their combinations (2.2 million more rows at a million responses, 90 s more to
#: build, for reads hardly shorter).
WITH_PIECES = WITH_PAIRS
#: The pairs kept by month instead (``day`` the month's 1st) of the populations that have
#: none by day (:data:`WITH_PAIRS`), per population. A view of two dimensions over months
#: then reads a few rows a month instead of the combinations its filters match: all of them
#: for two unselective filters deep in the index (new customers and a template version: the
#: heatmap's read 232 ms, the keywords' 134 ms on SQLite at a million responses).
#:
#: The heatmap's tickets (by hour of the week), the skipped invitations (by reason) and the
#: aspects (by survey dimension) keep the pairs of the dimensions after the team and the
#: channel in the index (:data:`VALUE_COLUMNS`): a view with a team or a channel seeks to its
#: entries (the channel's by naming the period's teams), a pair of the others would name 25
#: team-channel values or more, past :data:`~.rollup_read.SEEKS_PER_MONTH` for most. Their 15
#: pairs are 255,000 rows a year for the heatmap; all 28 were 660,000 and made the first
#: build 26 s longer. The keywords, whose pairs times the keyword are many (180,000 rows a
#: year for a region and a priority alone), keep only the pairs of the last three (tier,
#: new/returning, template version: 160,000 rows a year), which no seek reaches.
_AFTER_CHANNEL = tuple(
    pair for pair in combinations(PAIRED, 2) if not {"team", "channel"} & set(pair)
)
MONTH_PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "created": _AFTER_CHANNEL,
    "skipped": _AFTER_CHANNEL,
    "aspects": _AFTER_CHANNEL,
    "keywords": tuple(combinations(("customer_tier", "customer_is_new", "template_version"), 2)),
}
#: The populations with pairs by month.
MONTH_PAIRED = frozenset(MONTH_PAIRS)


#: The populations whose index leads with the month (:func:`month_start`) instead of the day:
#: those without week pieces. A view over months with three filters reads their combinations
#: of every day, and a search of the day's index entries per day and named value (365 × 25 for
#: a year with no team or channel among the filters: 9,125 searches, 80 ms for the heatmap's
#: on PostgreSQL) cost more than the entries it found; by month, a year is 13 × 25 searches
#: (11 ms), each reading a month's matching entries in a row, the day a condition on the
#: entry.
MONTH_KEYED = frozenset(AGGREGATES) - WITH_PIECES


class month_start(FunctionElement[date]):  # noqa: N801 - a SQL function, named like one
    """The first day of a roll-up day's month, in SQL: the second key of the index of the
    populations of :data:`MONTH_KEYED`. A read names it exactly as the index does, so the
    database uses the index (an expression index on both SQLite and PostgreSQL)."""

    type = Date()
    inherit_cache = True
    name = "month_start"


@compiles(month_start, "sqlite")
def _month_start_sqlite(element: month_start, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, 'start of month')"


@compiles(month_start, "postgresql")
def _month_start_postgresql(element: month_start, compiler: SQLCompiler, **kw: Any) -> str:
    # date_trunc of a timestamp (not of a date, which PostgreSQL would make a timestamp with
    # time zone: not immutable, so not indexable)
    day = compiler.process(element.clauses, **kw)
    return f"CAST(date_trunc('month', CAST({day} AS TIMESTAMP)) AS DATE)"


def piece_last_day(start: date, *, month: bool) -> date:
    """The last day of the piece beginning on ``start``: a month's (``month``) or a week
    piece's."""
    return month_end(start) if month else piece_end(start)


def first_of_month(day: date) -> date:
    """What :func:`month_start` gives for ``day``, in Python."""
    return day.replace(day=1)


def month_end(day: date) -> date:
    """The last day of ``day``'s month."""
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


#: The ``by_`` columns after the day (the month: :data:`MONTH_KEYED`) in the index every read
#: uses. A read of the combinations
#: seeks by equality on the leading ones (:mod:`analysis.metrics.rollup_read`): first the team
#: and the channel, the filters such views have most (a team's agents, a team on one channel
#: with a third filter), then the dimensions with the fewest values, which a read may name all
#: of to reach a filtered column behind them; the agent, with the most values, last.
VALUE_COLUMNS = tuple(
    f"by_{name}"
    for name in (
        "team",
        "channel",
        "priority",
        "region",
        "product_line",
        "customer_tier",
        "customer_is_new",
        "template_version",
        "agent",
    )
)


_PAIR_SETS = frozenset(frozenset(pair) for pair in PAIRS)


def has_pair_slice(dimensions: set[str]) -> bool:
    """Whether ``dimensions`` are a pair of :data:`PAIRS` (which has a slice of its own)."""
    return frozenset(dimensions) in _PAIR_SETS


def pair_slice(first: str, second: str) -> str:
    """The ``dimension`` of the slice of a pair of dimensions (in :data:`BY` order)."""
    a, b = sorted((first, second), key=BY.index)
    return f"{a}|{b}"


#: The name of the ``extra`` key in raw rows, per population.
#: (The heatmap's ``extra`` is the local hour of the week, 0 = Monday 00:00.)
EXTRA_KEYS = {
    "skipped": "reason",
    "sla": "priority",
    "created": "hour",
    "keywords": "keyword",
    "aspects": "aspect",
}
#: The longest ``extra`` value per population (default 32): a keyword has up to 60 characters.
EXTRA_LENGTH = {"keywords": 60}


#: The names of the indexes only PostgreSQL has (:func:`built_indexes`): the month-led ones
#: of the populations with week pieces.
POSTGRESQL_ONLY = frozenset(
    f"ix_metric_rollup_{kind}_dimension_month_values" for kind in WITH_PIECES
)


def _table(kind: str) -> Table:
    day = Column("day", Date, nullable=False)
    columns: list[Any] = [
        Column("id", Integer, primary_key=True),
        day,
        Column("dimension", String(32), nullable=False),
        Column("value", String(200)),
        Column("extra", String(EXTRA_LENGTH.get(kind, 32))),
        *(Column(f"by_{name}", String(200)) for name in BY),
        *(Column(name, BigInteger, nullable=False) for name in AGGREGATES[kind]),
    ]
    if kind == "durations":
        columns += [Column(f"{d}_values", LargeBinary, nullable=False) for d in DURATIONS]
    name = f"metric_rollup_{kind}"
    # Every read names a slice and a period. A view with three filters or more reads the
    # combinations of its period, most of which its filters reject: with every value in
    # the index they are rejected there, and only the matching rows are fetched (1 in 55
    # on the benchmark's page with a region, a priority and a product line: 60 -> 11 ms a
    # read on PostgreSQL). It serves a team or a channel among the filters as well as
    # their own indexes did, which it replaces (benchmarks/metrics_bench.py).
    if kind in MONTH_KEYED:
        # Covering: these reads sum a few columns (the extra key and one to three aggregates)
        # over entries the filters pick from all over a year; in the index they are summed
        # there instead of fetched row by row (a year of a template version, a region and a
        # priority: the keywords' read 48 -> 28 ms on SQLite).
        index = Index(
            f"ix_{name}_dimension_month_values",
            "dimension",
            month_start(day),
            *VALUE_COLUMNS,
            "day",
            "extra",
            *AGGREGATES[kind],
        )
        return Table(name, Model.metadata, *columns, index)
    by_day = Index(f"ix_{name}_dimension_day_values", "dimension", "day", *VALUE_COLUMNS)
    # On PostgreSQL a second index, led by the month, of the combinations (two thirds of the
    # rows) for the reads of many days that search each day's entries many times
    # (rollup_read.month_listed).
    by_month = Index(
        f"ix_{name}_dimension_month_values",
        "dimension",
        month_start(day),
        *VALUE_COLUMNS,
        "day",
        postgresql_where=Column("dimension").in_(("*", VERSIONED)),
    )
    by_month.ddl_if(dialect="postgresql")
    return Table(name, Model.metadata, *columns, by_day, by_month)


def built_indexes(table: Table, dialect: str) -> list[Index]:
    """The indexes of a roll-up table that ``dialect``'s database has."""
    return [i for i in table.indexes if dialect == "postgresql" or i.name not in POSTGRESQL_ONLY]


#: population → its roll-up table.
ROLLUP_TABLES: dict[str, Table] = {kind: _table(kind) for kind in AGGREGATES}


class RollupState(Model):
    """The roll-ups' one state row: built in which time zone, when last built or refreshed
    (absent: not built)."""

    __tablename__ = "metric_rollup_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    built_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DirtyInstant(Model):
    """An instant whose local day's roll-ups a write may have changed (written by triggers)."""

    __tablename__ = "metric_dirty"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
