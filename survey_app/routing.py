"""Numbers and days taken from URLs: within what the database and the calendar can hold.

An id, page number or day beyond these bounds cannot name anything, so it is
answered 404 (a path) or 400 (a filter) before it reaches the database, where
it would overflow (the id columns are PostgreSQL ``integer``, 32 bits, and
SQLite's 64-bit ``INTEGER``) and end as a 500.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import abort, request, url_for
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select
from werkzeug.routing import IntegerConverter, Map

from .extensions import db

#: The largest id every supported database holds (PostgreSQL's ``integer``).
MAX_ID = 2**31 - 1
#: Page numbers beyond this are refused (with 20 rows a page: 20 billion rows).
MAX_PAGE = 1_000_000_000
#: Days a date filter accepts: every stored time falls inside, and a local day's
#: start and end can be converted to UTC without leaving ``datetime``'s range.
EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(9998, 12, 31)


class IdConverter(IntegerConverter):
    """``<int:...>`` for ids: ASCII digits up to :data:`MAX_ID`, anything else a 404."""

    regex = r"[0-9]+"

    def __init__(
        self,
        map: Map,  # noqa: A002  (werkzeug's parameter name)
        fixed_digits: int = 0,
        min: int | None = None,  # noqa: A002
        max: int | None = None,  # noqa: A002
        signed: bool = False,
    ) -> None:
        super().__init__(map, fixed_digits, min, MAX_ID if max is None else max, signed)


def whole_number(raw: str | None, maximum: int = MAX_ID) -> int | None:
    """``raw`` as a non-negative whole number up to ``maximum``; None when it is not one.

    Only ASCII digits count: ``"²"`` passes ``str.isdigit`` but is no number,
    and ``int`` would also take ``"1_0"`` and ``" 10 "``.
    """
    if not raw or not (raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if value <= maximum else None


def within_supported_days(day: date) -> bool:
    """Whether a date filter's ``day`` is one the app can turn into times."""
    return EARLIEST_DAY <= day <= LATEST_DAY


def list_url(endpoint: str, **changes: Any) -> str:
    """The URL of the list at ``endpoint`` with this request's search and filters, and
    ``changes`` (``page=3``; None drops a parameter).

    Only the query's parameters are carried over, never ``url_for``'s own
    (``endpoint``, ``_external``, ``_method`` ...): a crafted ``?_method=POST``
    must not break (or redirect) the links of a page.
    """
    values: dict[str, Any] = {
        key: value
        for key, value in request.args.items()
        if key != "endpoint" and not key.startswith("_")
    }
    values.update(changes)
    return url_for(endpoint, **values)


def paginate(query: Select[Any], per_page: int) -> Pagination:
    """One page of ``query`` for ``?page=`` (missing or empty: page 1), counted with one
    SQL ``COUNT``.

    A page that names nothing is a 404: not a whole number (``abc``, ``-1``,
    ``²``), 0, beyond :data:`MAX_PAGE`, or past the last page. An empty list
    still has its page 1.
    """
    raw = request.args.get("page", "")
    page = whole_number(raw, MAX_PAGE) if raw else 1
    if not page:
        abort(404)
    # error_out: Flask-SQLAlchemy answers 404 for a page past the last one.
    return db.paginate(query, page=page, per_page=per_page, error_out=True)
