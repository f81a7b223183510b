"""One time zone and one format for every date and time people read.

Times are stored in UTC and shown in the display time zone (``BABEL_DEFAULT_TIMEZONE``,
Flask-Babel's), as ``YYYY-MM-DD HH:MM``; dates as ``YYYY-MM-DD``. The format is the
same in every language: it is how the date inputs, the CSV downloads and the Excel
report write them, and people in Shanghai and London read it the same way. Pages wrap
them in ``<time datetime="…">`` so machines read the exact instant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import Flask
from flask_babel import get_timezone, to_user_timezone
from markupsafe import Markup

DATETIME_FORMAT = "%Y-%m-%d %H:%M"
DATE_FORMAT = "%Y-%m-%d"
#: What a missing date or time shows.
NOTHING = "—"


def local_datetime_text(value: datetime | None) -> str:
    """``value`` (UTC; naive means UTC) in the display time zone as ``YYYY-MM-DD HH:MM``;
    "—" for None."""
    if value is None:
        return NOTHING
    return to_user_timezone(value).strftime(DATETIME_FORMAT)


def local_date_text(value: date | datetime | None) -> str:
    """A date as ``YYYY-MM-DD`` (a datetime: its day in the display time zone); "—" for
    None."""
    if value is None:
        return NOTHING
    if isinstance(value, datetime):
        value = to_user_timezone(value).date()
    return value.strftime(DATE_FORMAT)


def format_datetime(value: datetime | None) -> Markup | str:
    """The ``format_datetime`` filter: ``<time datetime="2026-12-04T07:33:00Z">2026-12-04
    15:33</time>`` (the title names the time zone); "—" for None."""
    if value is None:
        return NOTHING
    moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"), str(get_timezone()), local_datetime_text(value)
    )


def format_date(value: date | datetime | None) -> Markup | str:
    """The ``format_date`` filter: ``<time datetime="2026-12-04">2026-12-04</time>``; "—" for
    None."""
    if value is None:
        return NOTHING
    text = local_date_text(value)
    return Markup('<time datetime="{}">{}</time>').format(text, text)


def init_app(app: Flask) -> None:
    app.add_template_filter(format_datetime, "format_datetime")
    app.add_template_filter(format_date, "format_date")
