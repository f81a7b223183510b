"""Queries behind the staff pages."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import tzinfo
from typing import Any

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select

from ..csvexport import EXPORT_BATCH, local_time
from ..extensions import db
from ..labels import label
from ..models import Customer, Ticket
from ..search import contains_text

#: What the search box of the ticket list looks in.
TICKET_SEARCH_COLUMNS = (
    Ticket.external_id,
    Ticket.subject,
    Customer.name,
    Customer.email,
    Ticket.agent,
    Ticket.team,
)


def ticket_search(filters: Mapping[str, str | None]) -> Select[Ticket]:
    """Tickets matching ``filters``, newest first.

    ``q`` searches the ticket id, subject, customer name and e-mail, agent and
    team (substring, case-insensitive); ``status``, ``priority``, ``channel``
    and ``team`` must match exactly. Empty values are ignored.
    """
    query = select(Ticket).join(Ticket.customer)
    text = (filters.get("q") or "").strip()
    if text:
        query = query.where(contains_text(text, TICKET_SEARCH_COLUMNS))
    for name in ("status", "priority", "channel", "team"):
        value = filters.get(name)
        if value:
            query = query.where(getattr(Ticket, name) == value)
    return query.order_by(Ticket.created_at.desc(), Ticket.id.desc())


def ticket_export(
    filters: Mapping[str, str | None], zone: tzinfo
) -> tuple[Sequence[str | LazyString], Iterator[list[Any]]]:
    """The header and rows of the ticket list's CSV: every ticket :func:`ticket_search`
    finds (all pages, same order), read :data:`EXPORT_BATCH` rows at a time, times in
    ``zone``. The rows are only read when iterated."""
    header = [
        _l("Ticket"),
        _l("Subject"),
        _l("Customer"),
        _l("Customer e-mail"),
        _l("Priority"),
        _l("Channel"),
        _l("Team"),
        _l("Agent"),
        _l("Status"),
        _l("Created (%(zone)s)", zone=str(zone)),
        _l("Closed (%(zone)s)", zone=str(zone)),
    ]
    query = ticket_search(filters).with_only_columns(
        Ticket.external_id,
        Ticket.subject,
        Customer.name,
        Customer.external_id,
        Customer.email,
        Ticket.priority,
        Ticket.channel,
        Ticket.team,
        Ticket.agent,
        Ticket.status,
        Ticket.created_at,
        Ticket.closed_at,
    )

    def rows() -> Iterator[list[Any]]:
        for row in db.session.execute(query.execution_options(yield_per=EXPORT_BATCH)):
            yield [
                row[0],
                row[1],
                row[2] or row[3],
                row[4],
                label(row[5]),
                label(row[6]),
                row[7],
                row[8],
                label(row[9]),
                local_time(row[10], zone),
                local_time(row[11], zone),
            ]

    return header, rows()
