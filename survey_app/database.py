"""Engine set-up that differs per database."""

from __future__ import annotations

import sqlite3
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .extensions import db


def init_app(app: Flask) -> None:
    """Give SQLite connections WAL, foreign keys, a busy timeout and real transactions."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)


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


def _sqlite_on_begin(conn: Engine | Any) -> None:
    conn.exec_driver_sql("BEGIN")
