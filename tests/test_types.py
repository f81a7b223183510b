"""UTCDateTime: what SQLite stores, and what is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeDecorator

from survey_app.types import UTCDateTime

MOMENTS = [
    datetime(2026, 11, 1, 9, 30, tzinfo=UTC),
    datetime(2026, 11, 1, 9, 30, 5, 123456, tzinfo=ZoneInfo("Asia/Shanghai")),
    datetime(2026, 7, 29, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5))),
]


@pytest.mark.parametrize("moment", MOMENTS)
def test_sqlite_stores_the_text_sqlalchemy_would(moment: datetime) -> None:
    dialect = sqlite.dialect()
    utc_type = UTCDateTime()
    reference = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert reference is not None

    stored = utc_type.dialect_impl(dialect).bind_processor(dialect)(moment)

    assert stored == reference(utc_type.process_bind_param(moment, dialect))
    assert stored == TypeDecorator.bind_processor(utc_type.dialect_impl(dialect), dialect)(moment)
    assert datetime.fromisoformat(stored).replace(tzinfo=UTC) == moment


def test_naive_times_and_other_values_are_refused_and_none_is_null() -> None:
    process = UTCDateTime().bind_processor(sqlite.dialect())

    assert process(None) is None
    with pytest.raises(ValueError, match="naive datetime"):
        process(datetime(2026, 11, 1, 9, 30))
    with pytest.raises(TypeError, match="expected datetime"):
        process("2026-11-01 09:30:00")


def test_postgresql_binds_the_aware_utc_time() -> None:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    process = UTCDateTime().bind_processor(dialect)
    moment = MOMENTS[1]

    bound = process(moment) if process is not None else moment

    assert bound == moment and bound.utcoffset() == timedelta(0)
