"""What a KPI is computed over: a period of local calendar days and filters (:class:`Scope`).

Request arguments and CLI options become a :class:`MetricsQuery` in exactly one
place, :func:`parse_metrics_args`; it refuses bad input with a
:class:`ScopeError` naming every bad field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from survey_app.models import Channel, Priority, Tier

#: Everything a scope can filter on and a result can be grouped by.
DIMENSIONS = (
    "team",
    "agent",
    "channel",
    "priority",
    "product_line",
    "region",
    "customer_tier",
    "customer_is_new",
    "template_version",
)
Grain = Literal["day", "week", "month"]
GRAINS: tuple[Grain, ...] = ("day", "week", "month")
#: Longest period accepted, days, and most time buckets in one answer.
MAX_PERIOD_DAYS = 3660
MAX_BUCKETS = 1000
#: Period length when ``from`` is not given: the 30 days ending ``to`` (default today).
DEFAULT_PERIOD_DAYS = 30

_ENUMS: dict[str, type[Channel] | type[Priority] | type[Tier]] = {
    "channel": Channel,
    "priority": Priority,
    "customer_tier": Tier,
}
_NEW = {"new": True, "true": True, "1": True, "returning": False, "false": False, "0": False}


class ScopeError(ValueError):
    """Bad metrics arguments; ``errors`` lists ``{"field", "message"}`` for each."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def local_midnight(day: date, timezone: str) -> datetime:
    """The UTC instant at which ``day`` begins in ``timezone`` (an IANA name)."""
    return datetime.combine(day, time(0), ZoneInfo(timezone)).astimezone(UTC)


def _offset_minutes(at: datetime, zone: ZoneInfo) -> int:
    offset = at.astimezone(zone).utcoffset()
    return int(offset.total_seconds() // 60) if offset is not None else 0


def offset_spans(
    begin: datetime, end: datetime, zone: ZoneInfo
) -> list[tuple[datetime, datetime, int]]:
    """``[begin, end)`` cut where ``zone``'s UTC offset changes: ``(begin, end, minutes)`` each."""
    spans: list[tuple[datetime, datetime, int]] = []
    cursor = begin
    while cursor < end:
        offset = _offset_minutes(cursor, zone)
        low, change = cursor, None
        while low < end:
            high = min(low + timedelta(hours=12), end)
            probe = high if high < end else end - timedelta(seconds=1)
            if probe > low and _offset_minutes(probe, zone) != offset:
                # The offset changes in (low, probe]: find the first second with the new one.
                while probe - low > timedelta(seconds=1):
                    middle = low + (probe - low) / 2
                    middle = middle.replace(microsecond=0)
                    if middle <= low:
                        break
                    if _offset_minutes(middle, zone) == offset:
                        low = middle
                    else:
                        probe = middle
                change = probe
                break
            low = high
        if change is None:
            spans.append((cursor, end, offset))
            break
        spans.append((cursor, change, offset))
        cursor = change
    return spans


@dataclasses.dataclass(frozen=True)
class Scope:
    """A period of whole local days, ``start``..``end`` inclusive, in ``timezone``, and filters.

    Each filter is a tuple of accepted values (empty = any); ``customer_is_new``
    is True (new customers), False (returning) or None (both).
    """

    start: date
    end: date
    timezone: str = "Asia/Shanghai"
    team: tuple[str, ...] = ()
    agent: tuple[str, ...] = ()
    channel: tuple[Channel, ...] = ()
    priority: tuple[Priority, ...] = ()
    product_line: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    customer_tier: tuple[Tier, ...] = ()
    customer_is_new: bool | None = None
    template_version: tuple[int, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_midnight(self, day: date) -> datetime:
        """The UTC instant at which ``day`` begins in the scope's time zone."""
        return local_midnight(day, self.timezone)

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """The period as UTC instants ``[begin, end)``, from local midnight to local midnight."""
        return self.local_midnight(self.start), self.local_midnight(self.end + timedelta(days=1))

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Scope:
        """The same filters over the period of equal length that ends the day before ``start``."""
        end = self.start - timedelta(days=1)
        return dataclasses.replace(self, start=end - timedelta(days=self.days - 1), end=end)

    def filters(self) -> dict[str, tuple[Any, ...]]:
        """The active filters: dimension → accepted values (``customer_is_new`` as a 1-tuple)."""
        active: dict[str, tuple[Any, ...]] = {}
        for name in DIMENSIONS:
            value = getattr(self, name)
            if name == "customer_is_new":
                if value is not None:
                    active[name] = (value,)
            elif value:
                active[name] = value
        return active

    def to_json(self) -> dict[str, Any]:
        """The scope as JSON: ``from``, ``to``, ``timezone`` and the active filters."""
        filters: dict[str, Any] = {}
        for name, values in self.filters().items():
            if name == "customer_is_new":
                filters[name] = values[0]
            else:
                filters[name] = [getattr(v, "value", v) for v in values]
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "timezone": self.timezone,
            "filters": filters,
        }


@dataclasses.dataclass(frozen=True)
class MetricsQuery:
    """A scope and how to split it: by one dimension and/or by time buckets."""

    scope: Scope
    group_by: str | None = None
    grain: Grain | None = None


def _values(args: Mapping[str, Any], name: str) -> list[str]:
    getlist = getattr(args, "getlist", None)
    raw: Iterable[Any]
    if getlist is not None:
        raw = getlist(name)
    else:
        value = args.get(name)
        raw = () if value is None else value if isinstance(value, list | tuple) else (value,)
    return [str(v).strip() for v in raw if v is not None and str(v).strip() != ""]


def _one(args: Mapping[str, Any], name: str, errors: list[dict[str, str]]) -> str | None:
    values = _values(args, name)
    if len(values) > 1:
        errors.append({"field": name, "message": "give it once"})
    return values[0] if values else None


def _date(text: str | None, name: str, errors: list[dict[str, str]]) -> date | None:
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        errors.append({"field": name, "message": f"{text!r} is not a date (YYYY-MM-DD)"})
        return None


def parse_metrics_args(
    args: Mapping[str, Any],
    *,
    timezone: str,
    today: date | None = None,
) -> MetricsQuery:
    """Read ``from``, ``to``, ``group_by``, ``grain`` and the filters of :data:`DIMENSIONS`.

    ``args`` is a request's ``MultiDict`` or a plain mapping of a name to a
    string or a list of strings (the CLI's options); a filter given several
    times accepts any of its values. ``to`` defaults to today and ``from`` to
    30 days before it, both in ``timezone``. Refuses (:class:`ScopeError`)
    unknown arguments, bad dates, ``from`` after ``to``, a period over 10
    years, an unknown ``group_by`` or ``grain``, too many time buckets, and
    filter values outside their enumerations.
    """
    errors: list[dict[str, str]] = []
    known = {"from", "to", "group_by", "grain", *DIMENSIONS}
    for name in sorted(set(args.keys()) - known):
        errors.append({"field": name, "message": "unknown parameter"})
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScopeError(
            [{"field": "timezone", "message": f"unknown time zone {timezone!r}"}]
        ) from None
    if today is None:
        today = datetime.now(zone).date()
    end = _date(_one(args, "to", errors), "to", errors) or today
    start = _date(_one(args, "from", errors), "from", errors) or (
        end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    )
    if start > end:
        errors.append({"field": "from", "message": "must not be after 'to'"})
    elif (end - start).days + 1 > MAX_PERIOD_DAYS:
        errors.append({"field": "from", "message": f"the period is over {MAX_PERIOD_DAYS} days"})

    group_by = _one(args, "group_by", errors)
    if group_by is not None and group_by not in DIMENSIONS:
        errors.append({"field": "group_by", "message": f"must be one of {', '.join(DIMENSIONS)}"})
    grain = _one(args, "grain", errors)
    if grain is not None and grain not in GRAINS:
        errors.append({"field": "grain", "message": f"must be one of {', '.join(GRAINS)}"})
    elif grain == "day" and start <= end and (end - start).days + 1 > MAX_BUCKETS:
        errors.append({"field": "grain", "message": f"more than {MAX_BUCKETS} days: use week"})

    filters: dict[str, Any] = {}
    for name in DIMENSIONS:
        values = _values(args, name)
        if not values:
            continue
        if name in _ENUMS:
            enum_cls = _ENUMS[name]
            allowed = [m.value for m in enum_cls]
            bad = [v for v in values if v not in allowed]
            if bad:
                errors.append(
                    {"field": name, "message": f"{bad[0]!r} is not one of {', '.join(allowed)}"}
                )
                continue
            filters[name] = tuple(dict.fromkeys(enum_cls(v) for v in values))
        elif name == "customer_is_new":
            if len(values) > 1 or values[0].lower() not in _NEW:
                errors.append({"field": name, "message": "must be 'new' or 'returning'"})
                continue
            filters[name] = _NEW[values[0].lower()]
        elif name == "template_version":
            if not all(v.isdigit() and int(v) > 0 for v in values):
                errors.append({"field": name, "message": "must be a template version id"})
                continue
            filters[name] = tuple(dict.fromkeys(int(v) for v in values))
        else:
            if any(len(v) > 200 for v in values):
                errors.append({"field": name, "message": "longer than 200 characters"})
                continue
            filters[name] = tuple(dict.fromkeys(values))
    if errors:
        raise ScopeError(errors)
    scope = Scope(start=start, end=end, timezone=zone.key, **filters)
    return MetricsQuery(scope=scope, group_by=group_by, grain=grain)  # type: ignore[arg-type]


def time_buckets(scope: Scope, grain: Grain) -> list[tuple[str, datetime, datetime]]:
    """The scope's period cut into local days, ISO weeks (Monday) or calendar months.

    Returns ``(label, begin, end)`` with UTC instants, the first and last
    bucket clipped to the period; the label is the bucket's first local day
    (``2025-09-29``; for a week its Monday, for a month its 1st), even when
    the period starts later.
    """
    buckets: list[tuple[str, datetime, datetime]] = []
    day = scope.start
    while day <= scope.end:
        if grain == "day":
            first, following = day, day + timedelta(days=1)
        elif grain == "week":
            first = day - timedelta(days=day.weekday())
            following = first + timedelta(days=7)
        else:
            first = day.replace(day=1)
            following = (first + timedelta(days=32)).replace(day=1)
        stop = min(following, scope.end + timedelta(days=1))
        buckets.append((first.isoformat(), scope.local_midnight(day), scope.local_midnight(stop)))
        day = stop
    return buckets
