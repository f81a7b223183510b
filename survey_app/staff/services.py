"""Queries behind the staff pages."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Select, or_, select

from ..models import Customer, Ticket


def escape_like(text: str) -> str:
    """Make ``%``, ``_`` and ``\\`` match themselves in a LIKE pattern (escape char ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def ticket_search(filters: Mapping[str, str | None]) -> Select[Ticket]:
    """Tickets matching ``filters``, newest first.

    ``q`` searches the ticket id, subject, customer name and e-mail (substring,
    case-insensitive); ``status``, ``priority``, ``channel`` and ``team`` must
    match exactly. Empty values are ignored.
    """
    query = select(Ticket).join(Ticket.customer)
    text = (filters.get("q") or "").strip()
    if text:
        like = f"%{escape_like(text)}%"
        columns = (Ticket.external_id, Ticket.subject, Customer.name, Customer.email)
        query = query.where(or_(*(column.ilike(like, escape="\\") for column in columns)))
    for name in ("status", "priority", "channel", "team"):
        value = filters.get(name)
        if value:
            query = query.where(getattr(Ticket, name) == value)
    return query.order_by(Ticket.created_at.desc(), Ticket.id.desc())
