"""Working time: which days are working days, and how many working seconds lie between two times.

Working days follow the official Chinese calendar (the ``chinese-calendar``
package: public holidays off, adjusted weekend working days on) when
``SLA_CALENDAR`` is ``"CN"`` (the default), or plain Monday–Friday when it is
``"weekdays"``. ``SLA_HOLIDAYS`` and ``SLA_EXTRA_WORKDAYS`` (ISO dates) override
either. For a year the package has no data for, the calendar falls back to
Monday–Friday and logs a warning once per year: a number slightly off beats a
crash.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from survey_app.config import with_defaults

logger = logging.getLogger(__name__)

CALENDARS = ("CN", "weekdays")
#: Longest span measured day by day; anything longer is counted as this long (10 years).
MAX_DAYS = 3660

_warned_years: set[int] = set()


def _chinese_workday(day: date) -> bool | None:
    """The official answer, or None when the package has no data for that year."""
    import chinese_calendar

    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            logger.warning(
                "chinese-calendar has no holidays for %s: counting Monday-Friday as working "
                "days (update the package, or set SLA_HOLIDAYS / SLA_EXTRA_WORKDAYS)",
                day.year,
            )
        return None


def _parse_time(text: str) -> time:
    hours, _sep, minutes = text.strip().partition(":")
    return time(int(hours), int(minutes or 0))


@dataclass(frozen=True)
class WorkingCalendar:
    """Working days and daily working hours in one time zone."""

    timezone: str = "Asia/Shanghai"
    start: time = time(9, 0)
    end: time = time(18, 0)
    country: str = "CN"
    holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)
    #: Each day's working hours as UTC times (None: a day off), filled as days are asked.
    _hours: dict[date, tuple[datetime, datetime] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.country not in CALENDARS:
            raise ValueError(f"SLA_CALENDAR must be one of {', '.join(CALENDARS)}")
        if self.end <= self.start:
            raise ValueError("SLA working hours must end after they start")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WorkingCalendar:
        """Build from ``SLA_TIMEZONE``, ``SLA_WORKING_HOURS``, ``SLA_CALENDAR``, ``SLA_HOLIDAYS``
        and ``SLA_EXTRA_WORKDAYS`` (a setting ``config`` lacks: its declared default);
        refuses (ValueError) bad values."""
        settings = with_defaults(config)
        start_text, _sep, end_text = str(settings["SLA_WORKING_HOURS"]).partition("-")
        return cls(
            timezone=settings["SLA_TIMEZONE"] or settings["BABEL_DEFAULT_TIMEZONE"],
            start=_parse_time(start_text),
            end=_parse_time(end_text),
            country=str(settings["SLA_CALENDAR"]),
            holidays=_dates(settings["SLA_HOLIDAYS"] or ()),
            extra_workdays=_dates(settings["SLA_EXTRA_WORKDAYS"] or ()),
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_working_day(self, day: date) -> bool:
        """True if ``day`` is a working day (configured overrides first, then the calendar)."""
        if day in self.extra_workdays:
            return True
        if day in self.holidays:
            return False
        if self.country == "CN":
            official = _chinese_workday(day)
            if official is not None:
                return official
        return day.weekday() < 5

    def working_seconds(self, start: datetime, end: datetime) -> int:
        """Whole seconds of working time in ``[start, end)``; 0 if ``end`` is not after ``start``.

        Both must be timezone-aware. Working hours are wall-clock hours in
        :attr:`timezone` on each working day.
        """
        if end <= start:
            return 0
        zone = self.zone
        first = start.astimezone(zone).date()
        last = min(end.astimezone(zone).date(), first + timedelta(days=MAX_DAYS))
        # All in UTC: the same instants, compared and subtracted without time zone lookups.
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        total = 0.0
        day = first
        while day <= last:
            hours = self._working_hours(day, zone)
            if hours is not None:
                opens, closes = hours
                overlap = (min(end, closes) - max(start, opens)).total_seconds()
                if overlap > 0:
                    total += overlap
            day += timedelta(days=1)
        return int(total)

    def _working_hours(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
        """When ``day``'s working hours open and close (UTC), or None on a day off."""
        if day not in self._hours:
            self._hours[day] = (
                (
                    datetime.combine(day, self.start, zone).astimezone(UTC),
                    datetime.combine(day, self.end, zone).astimezone(UTC),
                )
                if self.is_working_day(day)
                else None
            )
        return self._hours[day]


def _dates(values: Iterable[str | date]) -> frozenset[date]:
    return frozenset(v if isinstance(v, date) else date.fromisoformat(str(v)) for v in values)


def elapsed_seconds(start: datetime, end: datetime) -> int:
    """Whole seconds from ``start`` to ``end`` on a 24×7 clock (0 if not after)."""
    return max(0, int((end.astimezone(UTC) - start.astimezone(UTC)).total_seconds()))
