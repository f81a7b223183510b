"""Engine set-up that differs per database, and the transaction helpers views use."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, Generic, TypeVar, cast

from flask import Flask
from sqlalchemy import (
    ARRAY,
    JSON,
    Column,
    ColumnElement,
    Select,
    Table,
    any_,
    bindparam,
    event,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.engine import Connection, CursorResult, Dialect, Result
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.schema import ColumnDefault

from .bulk_io import copy_rows
from .extensions import db

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Give SQLite connections WAL, foreign keys, a busy timeout and real transactions.

    Call after ``db.init_app``: the session teardown registered here then runs first.
    """
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    app.teardown_appcontext(_remove_session)


def _remove_session(_error: BaseException | None) -> None:
    """End the request's session; a connection the server dropped meanwhile is no error.

    When PostgreSQL restarts after a page was built, the rollback that ends the
    request fails on the dead connection. The answer is ready and right, so it
    is sent: SQLAlchemy has invalidated the connection (the pool opens a new one),
    this logs one line, and the session is dropped instead of raising a 500.
    """
    try:
        db.session.remove()
    except DBAPIError as error:
        log.warning("database connection lost at the end of a request: %s", first_line(error))
        db.session.registry.clear()


def changed_rows(result: Result[Any]) -> int:
    """How many rows an UPDATE, DELETE or INSERT run through ``Session.execute`` touched.

    The session returns a ``CursorResult`` for those statements; its type says
    only ``Result``. A driver that cannot tell gives -1.
    """
    return cast(CursorResult[Any], result).rowcount


def insert_rows(table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT ``rows`` (dicts keyed by column, all with the same keys) into ``table``, in
    the session's transaction, for bulk writes (the file import; no RETURNING).

    PostgreSQL: ``COPY ... FROM STDIN``, parsed in the server as one statement. SQLite:
    multi-row ``INSERT ... VALUES (...), (...)`` statements of up to
    :data:`SQLITE_ROWS_PER_INSERT` rows: SQLite runs each statement in a statement
    journal when the table has triggers or foreign keys, which made an executemany
    INSERT (one statement per row) cost about three times as much per row. Other
    databases: one executemany INSERT.

    The rows are stored as that INSERT would store them: each value goes through its
    column type's bind processing (a :class:`JSONText` is stored as it is), and columns
    the rows leave out get their Python default (called once per row, like
    SQLAlchemy's executemany) or their server default. A constraint violation raises
    SQLAlchemy's ``IntegrityError``.
    """
    if not rows:
        return
    connection = db.session.connection()
    name = connection.dialect.name
    if name == "postgresql":
        _copy_rows(connection, table, rows)
    elif name == "sqlite":
        _insert_values(connection, table, rows)
    else:
        decoded = [
            {k: json.loads(v) if type(v) is JSONText else v for k, v in row.items()}
            for row in rows
        ]
        db.session.execute(insert(table), decoded)


#: SQLite settings while a bulk import writes, and the usual ones (SQLite's defaults):
#: a 32 MB page cache instead of 2 MB, so the index pages a batch touches stay in memory
#: as the tables grow, and a checkpoint every 10,000 WAL pages (40 MB) instead of
#: every 1,000, so the pages many batches change are copied to the database file once.
_BULK_SQLITE = {"cache_size": (-32_768, -2_000), "wal_autocheckpoint": (10_000, 1_000)}


def bulk_writes(on: bool = True) -> None:
    """Set the session's connection up for a bulk import's writes (``on``), or back.

    SQLite only (per connection: :data:`_BULK_SQLITE`); a no-op elsewhere. Call it in
    each batch's transaction, and with ``on=False`` once the import ends.
    """
    connection = db.session.connection()
    if connection.dialect.name == "sqlite":
        for name, values in _BULK_SQLITE.items():
            connection.exec_driver_sql(f"PRAGMA {name} = {values[0 if on else 1]}")


def in_values(
    attribute: ColumnElement[Any] | QueryableAttribute[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """``column IN (values)`` with the list bound as one value: ``= ANY(array)`` on
    PostgreSQL, ``IN (SELECT value FROM json_each(?))`` on SQLite (strings and
    integers). A plain ``IN`` list has a parameter per value, rendered and bound on
    every execution: for the thousand values of an import batch, most of the query's
    time. Other databases: a plain ``IN``."""
    return _in_values(attribute, values, db.session.get_bind().dialect.name)


def _in_values(
    attribute: ColumnElement[Any] | QueryableAttribute[Any], values: Sequence[Any], name: str
) -> ColumnElement[bool]:
    column = attribute.expression if isinstance(attribute, QueryableAttribute) else attribute
    if name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    if name == "sqlite":
        listed: Select[Any] = select(literal_column("value"))
        return column.in_(listed.select_from(func.json_each(json.dumps(list(values)))))
    return column.in_(values)


def reserve_ids(table: Table, count: int) -> list[int]:
    """``count`` unused values of ``table``'s integer primary key ``id``, in ascending
    order, for rows about to be written with :func:`insert_rows` (no read-back needed).

    PostgreSQL: drawn from the column's sequence in one query, as the INSERT's default
    would (a concurrent writer draws others). Elsewhere (SQLite): the ones after the
    largest id, which SQLite would give; call it in a writing transaction
    (:func:`write_transaction`), which keeps other writers out until the commit (if
    one got in, the primary key refuses the rows: ``IntegrityError``).
    """
    if count <= 0:
        return []
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence(%(table)s, 'id')) "
            "FROM generate_series(1, %(count)s) ORDER BY 1",
            {"table": connection.dialect.identifier_preparer.format_table(table), "count": count},
        )
        return [row[0] for row in rows]
    largest = connection.execute(select(func.max(table.c.id))).scalar() or 0
    return list(range(largest + 1, largest + 1 + count))


def update_rows(table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """UPDATE rows of ``table`` by id, in the session's transaction: each row a dict of
    ``row_id`` and the columns to set (all with the same keys; bulk writes).

    PostgreSQL: one statement, ``UPDATE ... FROM json_to_recordset(...)`` (the values,
    bound as their column types bind them, in one JSON parameter), instead of a
    statement per row. Elsewhere an executemany UPDATE (in SQLite's process: cheap).
    """
    if not rows:
        return
    connection = db.session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql":
        db.session.execute(update(table).where(table.c.id == bindparam("row_id")), rows)
        return
    statement, parameters = _update_from_json(table, rows, dialect)
    connection.exec_driver_sql(statement, parameters)


def _update_from_json(
    table: Table, rows: Sequence[Mapping[str, Any]], dialect: Dialect
) -> tuple[str, dict[str, str]]:
    """:func:`update_rows`' statement on PostgreSQL, and its one parameter."""
    names = [key for key in rows[0] if key != "row_id"]
    columns = [table.c[name] for name in names]
    processors = [column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns]
    records = [
        {
            "row_id": row["row_id"],
            **{
                name: row[name] if process is None else process(row[name])
                for name, process in zip(names, processors, strict=True)
            },
        }
        for row in rows
    ]
    preparer = dialect.identifier_preparer
    target = preparer.format_table(table)
    fields = ", ".join(
        f"{preparer.quote(c.name)} {c.type.compile(dialect=dialect)}" for c in columns
    )
    statement = (
        f"UPDATE {target} SET "
        + ", ".join(f"{preparer.quote(c.name)} = v.{preparer.quote(c.name)}" for c in columns)
        + f" FROM json_to_recordset(%(rows)s) AS v(row_id integer, {fields})"
        + f" WHERE {target}.{preparer.quote('id')} = v.row_id"
    )
    return statement, {"rows": json.dumps(records, default=_json_time)}


def _json_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not written by update_rows")


#: Rows per multi-row INSERT on SQLite (fewer if the columns would pass the limit on
#: bound parameters: 32,766 since SQLite 3.32, 999 before).
SQLITE_ROWS_PER_INSERT = 500
#: The statement sizes the rest of the rows is split into: the driver keeps each
#: distinct statement prepared (up to 128), and one of 500 rows of twenty columns
#: holds about a megabyte, so the sizes are few (a batch's remainder of 478 rows is
#: 4 x 100 + 3 x 20 + 3 x 5 + 3 x 1) rather than one statement per remainder.
_SQLITE_SMALLER_INSERTS = (100, 20, 5, 1)


def _insert_values(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    columns, values = _bound_rows(connection, table, rows)
    limit = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999
    largest = max(1, min(SQLITE_ROWS_PER_INSERT, limit // len(columns)))
    preparer = connection.dialect.identifier_preparer
    head = (
        f"INSERT INTO {preparer.format_table(table)} "
        f"({', '.join(preparer.quote(c.name) for c in columns)}) VALUES "
    )
    one = "(" + ", ".join("?" * len(columns)) + ")"
    left = len(rows)
    for size in (largest, *(n for n in _SQLITE_SMALLER_INSERTS if n < largest)):
        statement = head + ", ".join([one] * size)
        while left >= size:
            flat: list[Any] = []
            for _row in range(size):
                flat.extend(next(values))
            connection.exec_driver_sql(statement, tuple(flat))
            left -= size


def _copy_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    columns, values = _bound_rows(connection, table, rows)
    copy_rows(connection, table, [c.name for c in columns], values)


class JSONText(str):
    """A value already serialised for a JSON column (``json.dumps``' text):
    :func:`insert_rows` stores it as it is instead of serialising it again."""


def _json_text_or(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def bind(value: Any) -> Any:
        return value if type(value) is JSONText else process(value)

    return bind


def _holds_datetimes(column: Column[Any]) -> bool:
    try:
        return column.type.python_type is datetime
    except NotImplementedError:  # a type that does not say
        return False


def _same_as_last(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process``, which gives the same object it was given last its result again at
    once: a batch's rows share their ``now`` (``updated_at`` and the like)."""
    last: list[Any] = [object(), None]

    def bind(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, process(value)
        return last[1]

    return bind


def _bound_rows(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> tuple[list[Column[Any]], Iterator[list[Any]]]:
    """The columns an INSERT of ``rows`` sets, and each row's values as the driver gets
    them: the keys of the first row, then the columns with a Python default."""
    dialect = connection.dialect
    given = [table.c[key] for key in rows[0]]
    defaulted = [
        column
        for column in table.c
        if column.key not in rows[0]
        and isinstance(column.default, ColumnDefault)
        and (column.default.is_scalar or column.default.is_callable)
    ]
    processors: list[tuple[str, Callable[[Any], Any] | None]] = []
    for column in given:
        process: Callable[[Any], Any] | None = column.type.dialect_impl(dialect).bind_processor(
            dialect
        )
        if process is not None and isinstance(column.type, JSON):
            process = _json_text_or(process)
        elif process is not None and _holds_datetimes(column):
            process = _same_as_last(process)
        processors.append((column.key, process))
    defaults = [
        (
            column.type.dialect_impl(dialect).bind_processor(dialect),
            cast(ColumnDefault, column.default),
        )
        for column in defaulted
    ]

    # The row's values in one call, then the few that need processing replaced.
    take = itemgetter(*(key for key, _process in processors))
    single = len(processors) == 1
    processed = [(i, process) for i, (_key, process) in enumerate(processors) if process]

    def values() -> Iterator[list[Any]]:
        for row in rows:
            bound = [take(row)] if single else list(take(row))
            for i, process in processed:
                bound[i] = process(bound[i])
            for apply, default in defaults:
                value = default.arg(None) if default.is_callable else default.arg
                bound.append(value if apply is None else apply(value))
            yield bound

    return given + defaulted, values()


def first_line(error: DBAPIError) -> str:
    """The driver's message, first line only (no SQL, no parameters) for a log line."""
    lines = str(error.orig or error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide when transactions begin, so that
    # SAVEPOINTs (one per imported row) work as documented.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


#: Request methods whose transactions start with SQLite's write lock.
_WRITING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFERRED_MARK = "closedloop_deferred_writes"

View = TypeVar("View", bound=Callable[..., Any])


def deferred_writes(view: View) -> View:
    """Let ``view``'s transactions begin deferred even for a POST (place under ``route``).

    For a busy view that reads first and then writes in one short transaction it
    opens itself with :func:`write_transaction`: SQLite's write lock is then held
    for the write alone, not for the whole request (form parsing, validation,
    rendering), which would let only one such request run at a time. The survey
    submit is one.
    """
    setattr(view, _DEFERRED_MARK, True)
    return view


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if _takes_write_lock(conn) else "BEGIN")


def _takes_write_lock(conn: Connection) -> bool:
    """Whether this transaction should take the write lock when it begins.

    A deferred transaction that read first and writes later fails at once with
    "database is locked" (the busy timeout does not apply: its snapshot is
    stale) when another process, such as the Celery worker or the dispatcher
    thread, committed in between. So a request that changes things (POST ...)
    begins IMMEDIATE and waits its turn behind the busy timeout, as do
    transactions opened with :func:`write_transaction`; a view marked with
    :func:`deferred_writes` opens its write transaction itself. Reads stay deferred:
    in WAL mode they never wait, and one held open never blocks a writer.
    """
    from flask import current_app, has_request_context, request

    if conn.get_execution_options().get("sqlite_immediate"):
        return True
    if not has_request_context() or request.method not in _WRITING_METHODS:
        return False
    view = current_app.view_functions.get(request.endpoint or "")
    return not getattr(view, _DEFERRED_MARK, False)


def write_transaction() -> None:
    """Start the session's next transaction as a writing one (SQLite: ``BEGIN IMMEDIATE``).

    Ends a transaction the session holds that has nothing to write (a read
    snapshot that SQLite could not turn into a write), so call it before the
    reads a write depends on. A no-op on PostgreSQL beyond that.
    """
    session = db.session()
    if session.in_transaction():
        if session.new or session.dirty or session.deleted:
            return
        session.commit()
    session.connection(execution_options={"sqlite_immediate": True})


Refusal = TypeVar("Refusal", bound=Exception)


@dataclass
class Attempt(Generic[Refusal]):
    """What :func:`commit_unless` saw: the refusal that rolled the block back, else None."""

    refusal: Refusal | None = None


@contextmanager
def commit_unless(refusal: type[Refusal]) -> Iterator[Attempt[Refusal]]:
    """Commit the session when the block ends; roll back when it raises ``refusal``.

    The refusal (an operation's "no", its message meant for the user) is kept
    on the yielded :class:`Attempt` and goes no further, so the view shows it;
    any other exception propagates uncommitted, to the error handlers.
    """
    attempt: Attempt[Refusal] = Attempt()
    try:
        yield attempt
    except refusal as exc:
        db.session.rollback()
        attempt.refusal = exc
    else:
        db.session.commit()
