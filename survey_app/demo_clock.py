"""The demo team's clock: when customers write, and when a 9–18 team can answer.

Arrivals follow a working-day curve (a morning and an afternoon peak, little at
night) and are far fewer on weekends and on Chinese public holidays (the
``chinese-calendar`` package, Monday–Friday for a year it has no data for).
Work is counted in working minutes: a ticket opened at 22:00 waits for the
next opening, one opened on 30 September waits for the end of National Day.
The working hours and time zone are the SLA settings' (``SLA_WORKING_HOURS``,
``SLA_TIMEZONE``), so the demo's team works the hours its SLA counts.
"""

from __future__ import annotations

import bisect
import functools
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

#: Relative arrivals per local hour (0–23) on a working day: quiet nights, a morning
#: peak, a lunch dip, an afternoon peak, an evening tail.
WORKDAY_ARRIVALS = (
    0.3, 0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.8, 2.5, 5.5, 7.0, 7.0,
    4.5, 5.0, 6.5, 6.5, 6.0, 4.5, 3.0, 2.2, 1.8, 1.4, 0.9, 0.5,
)  # fmt: skip
#: The same on a weekend or holiday: flatter, and scaled down by the day's factor.
DAY_OFF_ARRIVALS = (
    0.3, 0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 1.2, 2.0, 2.6, 2.8,
    2.4, 2.4, 2.6, 2.6, 2.4, 2.2, 1.8, 1.6, 1.4, 1.1, 0.8, 0.5,
)  # fmt: skip
#: Day factors: Monday brings the weekend's backlog, Friday is lighter.
WEEKDAY_FACTOR = (1.15, 1.0, 1.0, 1.0, 0.9, 1.0, 1.0)
WEEKEND_FACTOR = 0.35
HOLIDAY_FACTOR = 0.2


@functools.lru_cache(maxsize=1024)
def _official(day: date) -> tuple[bool, bool]:
    """(working day, public holiday) from the official Chinese calendar; Monday–Friday and
    no holiday for a year the package has no data for."""
    import chinese_calendar

    try:
        working = bool(chinese_calendar.is_workday(day))
        holiday = not working and chinese_calendar.get_holiday_detail(day)[1] is not None
    except NotImplementedError:
        return day.weekday() < 5, False
    return working, holiday


@dataclass(frozen=True)
class DemoClock:
    """Working days and hours of the demo team in one time zone."""

    timezone: str = "Asia/Shanghai"
    opens: time = time(9, 0)
    closes: time = time(18, 0)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DemoClock:
        """The clock of the SLA settings (``SLA_WORKING_HOURS``, ``SLA_TIMEZONE`` or
        ``BABEL_DEFAULT_TIMEZONE``); refuses (ValueError) hours that do not parse."""
        opens, _sep, closes = str(config["SLA_WORKING_HOURS"]).partition("-")
        return cls(
            timezone=config["SLA_TIMEZONE"] or config["BABEL_DEFAULT_TIMEZONE"],
            opens=time.fromisoformat(opens.strip().zfill(5)),
            closes=time.fromisoformat(closes.strip().zfill(5)),
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_working_day(self, day: date) -> bool:
        """True on an official working day (adjusted weekend working days included)."""
        return _official(day)[0]

    def arrival_weight(self, local: datetime) -> float:
        """How many tickets arrive in the local hour starting at ``local``, relatively."""
        working, holiday = _official(local.date())
        if working:
            return WORKDAY_ARRIVALS[local.hour] * WEEKDAY_FACTOR[local.weekday()]
        factor = HOLIDAY_FACTOR if holiday else WEEKEND_FACTOR
        return DAY_OFF_ARRIVALS[local.hour] * factor

    def arrivals(self, begin: datetime, end: datetime) -> ArrivalPattern:
        """The whole hours from ``begin`` to ``end`` (UTC, aware) with their arrival weights
        (an hour begun before ``begin`` is left out, so no arrival falls before it)."""
        zone = self.zone
        hour = begin.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        if hour < begin:
            hour += timedelta(hours=1)
        starts: list[datetime] = []
        cumulative: list[float] = []
        total = 0.0
        while hour < end:
            total += self.arrival_weight(hour.astimezone(zone))
            starts.append(hour)
            cumulative.append(total)
            hour += timedelta(hours=1)
        return ArrivalPattern(starts, cumulative)

    def is_working_time(self, moment: datetime) -> bool:
        """True if ``moment`` lies inside working hours on a working day."""
        local = moment.astimezone(self.zone)
        return self.is_working_day(local.date()) and self.opens <= local.time() < self.closes

    def add_working_minutes(self, start: datetime, minutes: float) -> datetime:
        """The moment ``minutes`` of working time after ``start`` (UTC): time outside working
        hours and days is skipped, so work begun at night starts at the next opening."""
        zone = self.zone
        remaining = timedelta(minutes=minutes)
        moment = start.astimezone(zone)
        day = moment.date()
        while True:
            if self.is_working_day(day):
                opens = datetime.combine(day, self.opens, zone)
                closes = datetime.combine(day, self.closes, zone)
                begin = max(moment, opens)
                if begin < closes:
                    if begin + remaining <= closes:
                        return (begin + remaining).astimezone(UTC)
                    remaining -= closes - begin
            day += timedelta(days=1)
            moment = datetime.combine(day, time(0, 0), zone)

    def working_minutes(self, start: datetime, end: datetime) -> float:
        """Minutes of working time in ``[start, end)`` (0 if ``end`` is not after ``start``)."""
        zone = self.zone
        total = timedelta()
        day = start.astimezone(zone).date()
        while end > start and day <= end.astimezone(zone).date():
            if self.is_working_day(day):
                opens = datetime.combine(day, self.opens, zone)
                closes = datetime.combine(day, self.closes, zone)
                total += max(timedelta(), min(end, closes) - max(start, opens))
            day += timedelta(days=1)
        return total.total_seconds() / 60


@dataclass(frozen=True)
class ArrivalPattern:
    """Hour starts and their cumulative arrival weights, for drawing arrival times."""

    starts: list[datetime]
    cumulative: list[float]

    def draw(self, rng: random.Random) -> datetime:
        """A random arrival: an hour by its weight, a minute inside it uniformly."""
        point = rng.random() * self.cumulative[-1]
        index = min(bisect.bisect_right(self.cumulative, point), len(self.starts) - 1)
        return self.starts[index] + timedelta(minutes=rng.randrange(60))
