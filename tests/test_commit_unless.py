"""commit_unless, the views' one transaction: the block commits, or a refusal rolls it back
and is kept for the page; any other error goes on uncommitted."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from survey_app.database import commit_unless
from survey_app.extensions import db
from survey_app.models import Customer

#: Transaction semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db


class Refused(ValueError):
    """An operation's "no"."""


def _add(name: str) -> None:
    db.session.add(Customer(source="test", external_id=name, name=name))


def _names() -> set[str | None]:
    return set(db.session.scalars(select(Customer.name)))


def test_the_block_commits(app):
    with app.app_context():
        with commit_unless(Refused) as attempt:
            _add("Ada")
        assert attempt.refusal is None
        db.session.rollback()  # nothing left to roll back: the block committed
        assert "Ada" in _names()


def test_a_refusal_rolls_back_and_is_kept(app):
    with app.app_context():
        with commit_unless(Refused) as attempt:
            _add("Bo")
            db.session.flush()
            raise Refused("not today")
        assert isinstance(attempt.refusal, Refused)
        assert str(attempt.refusal) == "not today"
        assert "Bo" not in _names()


def test_another_error_propagates_uncommitted(app):
    with app.app_context():
        with pytest.raises(KeyError), commit_unless(Refused):
            _add("Cy")
            raise KeyError("bug")
        db.session.rollback()
        assert "Cy" not in _names()
