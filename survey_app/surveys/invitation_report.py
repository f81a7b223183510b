"""The invitation log: every decision (sent, skipped and why, failed, answered), counted in SQL."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import tzinfo
from typing import Any

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import contains_eager, selectinload

from ..csvexport import EXPORT_BATCH, local_time
from ..extensions import db
from ..labels import label
from ..models import Customer, Ticket
from ..search import contains_text
from .models import Invitation, InvitationStatus, SkipReason, SurveyTemplate, TemplateVersion

#: Invitations that reached the customer (the denominator of the response rate).
DELIVERED_STATUSES = (InvitationStatus.SENT, InvitationStatus.ANSWERED)
#: What the search box of the invitation log looks in (besides the status names).
INVITATION_SEARCH_COLUMNS = (Ticket.external_id, Customer.email, Customer.name)


def statuses_named(text: str) -> list[InvitationStatus]:
    """The statuses whose value or shown name (in the reader's language) contains ``text``,
    any case: the search box finds "failed" and "发送失败" alike."""
    wanted = text.casefold()
    return [
        status
        for status in InvitationStatus
        if wanted in status.value.casefold() or wanted in label(status).casefold()
    ]


def _filtered(filters: Mapping[str, str | None]) -> Select[Invitation]:
    query = select(Invitation).join(Invitation.ticket).join(Invitation.customer)
    text = (filters.get("q") or "").strip()
    if text:
        found = contains_text(text, INVITATION_SEARCH_COLUMNS)
        named = statuses_named(text)
        if named:
            found = or_(found, Invitation.status.in_(named))
        query = query.where(found)
    status = filters.get("status")
    if status:
        query = query.where(Invitation.status == InvitationStatus(status))
    skip_reason = filters.get("skip_reason")
    if skip_reason:
        query = query.where(Invitation.skip_reason == SkipReason(skip_reason))
    return query.order_by(Invitation.created_at.desc(), Invitation.id.desc())


def invitation_search(filters: Mapping[str, str | None]) -> Select[Invitation]:
    """Invitations matching ``filters``, newest first.

    ``q`` searches the ticket id and the customer's e-mail and name (substring,
    case-insensitive) and the status names; ``status`` and ``skip_reason`` must
    match exactly. Empty values are ignored.
    """
    return _filtered(filters).options(
        contains_eager(Invitation.ticket),
        contains_eager(Invitation.customer),
        selectinload(Invitation.template_version).selectinload(TemplateVersion.template),
    )


def invitation_export(
    filters: Mapping[str, str | None], zone: tzinfo
) -> tuple[Sequence[str | LazyString], Iterator[list[Any]]]:
    """The header and rows of the invitation log's CSV: every invitation
    :func:`invitation_search` finds (all pages, same order), read
    :data:`~survey_app.csvexport.EXPORT_BATCH` rows at a time, times in ``zone``.
    The rows are only read when iterated."""
    header = [
        _l("Created (%(zone)s)", zone=str(zone)),
        _l("Ticket"),
        _l("Customer"),
        _l("Customer e-mail"),
        _l("Status"),
        _l("Reason"),
        _l("Survey"),
        _l("Sent (%(zone)s)", zone=str(zone)),
        _l("Reminded (%(zone)s)", zone=str(zone)),
        _l("Answered (%(zone)s)", zone=str(zone)),
        _l("Attempts"),
        _l("Last error"),
    ]
    query = (
        _filtered(filters)
        .outerjoin(Invitation.template_version)
        .outerjoin(TemplateVersion.template)
        .with_only_columns(
            Invitation.created_at,
            Ticket.external_id,
            Customer.name,
            Customer.external_id,
            Customer.email,
            Invitation.status,
            Invitation.skip_reason,
            SurveyTemplate.name,
            TemplateVersion.number,
            Invitation.sent_at,
            Invitation.reminded_at,
            Invitation.answered_at,
            Invitation.attempts,
            Invitation.last_error,
        )
    )

    def rows() -> Iterator[list[Any]]:
        for row in db.session.execute(query.execution_options(yield_per=EXPORT_BATCH)):
            (created, ticket, name, customer_id, email, status, reason, survey, number,
             sent, reminded, answered, attempts, error) = row  # fmt: skip
            yield [
                local_time(created, zone),
                ticket,
                name or customer_id,
                email,
                label(status),
                label(reason),
                f"{survey} v{number}" if survey else None,
                local_time(sent, zone),
                local_time(reminded, zone),
                local_time(answered, zone),
                attempts,
                error,
            ]

    return header, rows()


def counts_by_status() -> dict[InvitationStatus, int]:
    """How many invitations are in each status (every status listed, 0 if none)."""
    rows = db.session.execute(
        select(Invitation.status, func.count()).group_by(Invitation.status)
    ).all()
    found = dict(rows)
    return {status: found.get(status, 0) for status in InvitationStatus}


def counts_by_skip_reason() -> dict[SkipReason, int]:
    """How many invitations were skipped or cancelled for each reason (only reasons seen)."""
    rows = db.session.execute(
        select(Invitation.skip_reason, func.count())
        .where(Invitation.skip_reason.is_not(None))
        .group_by(Invitation.skip_reason)
        .order_by(func.count().desc())
    ).all()
    return {reason: count for reason, count in rows if reason is not None}


def response_rate(by_status: Mapping[InvitationStatus, int]) -> float | None:
    """Answered invitations as a share of those delivered (sent or answered); None if none."""
    delivered = sum(by_status.get(status, 0) for status in DELIVERED_STATUSES)
    if not delivered:
        return None
    return by_status.get(InvitationStatus.ANSWERED, 0) / delivered
