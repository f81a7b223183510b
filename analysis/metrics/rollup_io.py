"""The roll-ups' reads and writes through the driver: hundreds of thousands of rows whose
values are already what the columns store (dates, ints, bytes), without result processing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from survey_app.bulk_io import copy_rows
from survey_app.extensions import db


def as_date(value: Any) -> date:
    """A roll-up day as a date (SQLite returns its ISO text)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


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


def insert_tuples(table: Any, names: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert roll-up rows (tuples of the ``names`` columns, ``day`` first) through the
    driver: a rebuild writes hundreds of thousands, and the values are already what the
    columns store (dates, ints, bytes). PostgreSQL takes them by ``COPY`` (its
    ``executemany`` sends one ``INSERT`` per row), SQLite by ``executemany``."""
    if not rows:
        return
    connection = db.session.connection()
    columns = ", ".join(names)
    if connection.dialect.name == "postgresql":
        copy_rows(connection, table, names, rows, binary=True)
        return
    if not all(type(row[0]) is str for row in rows):  # read back from SQLite: ISO text
        days: dict[Any, str] = {}  # SQLite stores a date as its ISO text
        rows = [
            (days.get(row[0]) or days.setdefault(row[0], as_date(row[0]).isoformat()), *row[1:])
            for row in rows
        ]
    marks = ", ".join("?" for _ in names)
    connection.exec_driver_sql(f"INSERT INTO {table.name} ({columns}) VALUES ({marks})", rows)
