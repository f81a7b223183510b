"""Column types shared by every model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


#: SQLAlchemy's storage format for SQLite ``DATETIME`` (``sqlalchemy.dialects.sqlite.DATETIME``).
_SQLITE_DATETIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL stores ``timestamptz``. SQLite has no time zones, so the value is
    stored as naive UTC and given its zone back on load. Naive datetimes are
    refused on the way in: a time without a zone is a bug, not a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def bind_processor(self, dialect: Dialect) -> Any:
        """On SQLite, the stored text in one step: what :meth:`process_bind_param` and
        SQLAlchemy's ``DATETIME`` give (``YYYY-MM-DD HH:MM:SS.ffffff``, naive UTC) in a
        third of the time (a bulk import binds a dozen timestamps per row)."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: Any) -> str | None:
            if isinstance(value, datetime) and value.tzinfo is not None:
                utc = value.astimezone(UTC)
                return _SQLITE_DATETIME % (
                    utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second,
                    utc.microsecond,
                )  # fmt: skip
            self.process_bind_param(value, dialect)  # raises, unless value is None
            return None

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
