"""Bulk reads and writes through the driver: ``COPY`` on PostgreSQL, a larger page cache for
SQLite (the file import and the KPI roll-ups' build)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import BigInteger, Date, Integer, LargeBinary, String, Table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from .extensions import db

#: The PostgreSQL type of each column type :func:`copy_rows` sends in the binary format.
_BINARY_COPY_TYPES: dict[type, str] = {
    Date: "date",
    String: "text",
    BigInteger: "int8",
    Integer: "int4",
    LargeBinary: "bytea",
}


def copy_rows(
    connection: Connection,
    table: Table,
    names: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    binary: bool = False,
) -> None:
    """``COPY`` ``rows`` (tuples of the ``names`` columns, values as the driver takes them)
    into ``table``: PostgreSQL, in the session's transaction. ``binary``: in the binary
    format (columns of the types of :data:`_BINARY_COPY_TYPES` only), which the server
    parses faster. A constraint violation raises SQLAlchemy's ``IntegrityError``."""
    dialect = connection.dialect
    preparer = dialect.identifier_preparer
    statement = (
        f"COPY {preparer.format_table(table)} "
        f"({', '.join(preparer.quote(name) for name in names)}) FROM STDIN"
        + (" (FORMAT BINARY)" if binary else "")
    )
    driver = connection.connection.driver_connection
    assert driver is not None, "a live connection"
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            if binary:
                copy.set_types([_BINARY_COPY_TYPES[type(table.c[n].type)] for n in names])
            for row in rows:
                copy.write_row(row)
    except dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(statement, None, error, dialect.loaded_dbapi.Error) from error


@contextmanager
def sqlite_page_cache(mebibytes: int) -> Iterator[None]:
    """A page cache of ``mebibytes`` for the session's SQLite connection while the block runs,
    then the one it had; a no-op elsewhere. For a bulk build in one transaction: the pages
    it writes and its sorts (``GROUP BY``) stay in memory (the default is 2 MB)."""
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = {-int(mebibytes) * 1024}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(before or -2000)}")
