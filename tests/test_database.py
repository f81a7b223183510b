"""SQLite transactions: writers take the lock up front, so a busy database waits, never fails."""

from __future__ import annotations

import sqlite3

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from survey_app.database import write_transaction
from survey_app.extensions import db
from survey_app.models import Customer
from tests.conftest import is_postgres

pytestmark = [
    pytest.mark.skipif(is_postgres(), reason="SQLite locking"),
    pytest.mark.real_db,
    pytest.mark.db,
]


def _database_file(app: Flask) -> str:
    with app.app_context():
        return db.engine.url.database


def _other_writer_commits(app: Flask, name: str) -> None:
    """Another process (say, the Celery worker) renames the customer and commits."""
    with sqlite3.connect(_database_file(app), timeout=5) as other:
        other.execute("UPDATE customer SET name = ? WHERE external_id = 'C-1'", (name,))
    other.close()


def _lock_is_free(app: Flask) -> bool:
    other = sqlite3.connect(_database_file(app), timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        other.close()


@pytest.fixture
def customer(app: Flask) -> None:
    with app.app_context():
        db.session.add(Customer(source="helpdesk", external_id="C-1", name="A", email="a@x.org"))
        db.session.commit()


def _read_name() -> str | None:
    return db.session.scalar(select(Customer.name).where(Customer.external_id == "C-1"))


def _rename(name: str) -> None:
    db.session.execute(update(Customer).where(Customer.external_id == "C-1").values(name=name))
    db.session.commit()


def test_a_stale_read_snapshot_cannot_write_which_is_why_writers_begin_immediate(
    app: Flask, customer: None
) -> None:
    with app.app_context():
        assert _read_name() == "A"
        _other_writer_commits(app, "B")
        with pytest.raises(OperationalError, match="locked"):
            _rename("C")
        db.session.rollback()


def test_write_transaction_ends_the_read_snapshot_and_writes(app: Flask, customer: None) -> None:
    with app.app_context():
        assert _read_name() == "A"
        _other_writer_commits(app, "B")
        write_transaction()
        assert not _lock_is_free(app)
        assert _read_name() == "B"
        _rename("C")
        assert _lock_is_free(app)
        assert _read_name() == "C"


def test_a_post_request_holds_the_write_lock_a_get_does_not(app: Flask, customer: None) -> None:
    with app.test_request_context("/", method="GET"):
        assert _read_name() == "A"
        assert _lock_is_free(app)
        db.session.rollback()
    with app.test_request_context("/", method="POST"):
        assert _read_name() == "A"
        assert not _lock_is_free(app)
        db.session.rollback()
        assert _lock_is_free(app)


def test_the_survey_submit_reads_without_the_lock_and_writes_with_it(
    app: Flask, customer: None
) -> None:
    # Marked with deferred_writes: only its write transaction holds the lock.
    with app.test_request_context("/s/some-token", method="POST"):
        assert _read_name() == "A"
        assert _lock_is_free(app)
        write_transaction()
        assert not _lock_is_free(app)
        _rename("D")
        assert _lock_is_free(app)
