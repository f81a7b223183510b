"""The query planner's statistics: SQLite keeps none until ``ANALYZE`` runs.

Without them SQLite's planner guesses, and one guess costs the dashboards
dearly: of two equality filters it may walk the index of the less selective one
(a team: a quarter of all tickets) instead of the agent's (one in sixty), or a
filter's index instead of the period's. ``ANALYZE`` records, per index, how many
rows each value holds. :func:`analyse_if_due` (the ``analyse-database`` job)
refreshes them once the big tables have grown by :data:`GROWTH` since they were
last measured, table by table in short transactions (the write lock is held for
one table at a time: about 2 s for a million tickets). PostgreSQL's autovacuum
keeps its own statistics current; there the job does nothing and
``closedloop db analyse`` runs a plain ``ANALYZE`` (a sample per table).
"""

from __future__ import annotations

from sqlalchemy import inspect, text

from .database import write_transaction
from .extensions import db

#: Re-measure once a big table holds this much more than when it was measured.
GROWTH = 1.2
#: The tables whose size says when to re-measure (a count: tens of ms at a million rows).
WATCHED = ("ticket", "survey_response", "invitation")


def analyse() -> list[str]:
    """Refresh the planner's statistics of every table; return the tables measured."""
    tables = sorted(inspect(db.engine).get_table_names())
    sqlite = db.engine.dialect.name == "sqlite"
    for table in tables:
        if sqlite:
            write_transaction()
        db.session.execute(text(f'ANALYZE "{table}"'))
        db.session.commit()
    return tables


def analyse_if_due(min_rows: int) -> str:
    """The ``analyse-database`` job: on SQLite, :func:`analyse` when a watched table holds at
    least ``min_rows`` rows and was never measured or has grown by :data:`GROWTH` since."""
    if db.engine.dialect.name != "sqlite":
        return "not needed: PostgreSQL's autovacuum keeps the statistics"
    measured = _measured_rows()
    for table in WATCHED:
        rows = db.session.scalar(text(f"SELECT count(*) FROM {table}")) or 0  # noqa: S608
        if rows >= min_rows and rows >= measured.get(table, 0) * GROWTH:
            return f"analysed {len(analyse())} tables"
    return "up to date"


def _measured_rows() -> dict[str, int]:
    """Rows per table when it was last measured (SQLite's ``sqlite_stat1``), if ever."""
    exists = db.session.scalar(
        text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
    )
    if not exists:
        return {}
    measured: dict[str, int] = {}
    for table, stat in db.session.execute(text("SELECT tbl, stat FROM sqlite_stat1")):
        if stat:
            measured[table] = max(measured.get(table, 0), int(str(stat).split()[0]))
    return measured
