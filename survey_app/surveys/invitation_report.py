"""The invitation log: every decision (sent, skipped and why, failed, answered), counted in SQL."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from ..extensions import db
from .models import Invitation, InvitationStatus, SkipReason, TemplateVersion

#: Invitations that reached the customer (the denominator of the response rate).
DELIVERED_STATUSES = (InvitationStatus.SENT, InvitationStatus.ANSWERED)


def invitation_search(filters: Mapping[str, str | None]) -> Select[Invitation]:
    """Invitations matching ``status`` and ``skip_reason`` (empty = any), newest first."""
    query = select(Invitation).options(
        selectinload(Invitation.ticket),
        selectinload(Invitation.customer),
        selectinload(Invitation.template_version).selectinload(TemplateVersion.template),
    )
    status = filters.get("status")
    if status:
        query = query.where(Invitation.status == InvitationStatus(status))
    skip_reason = filters.get("skip_reason")
    if skip_reason:
        query = query.where(Invitation.skip_reason == SkipReason(skip_reason))
    return query.order_by(Invitation.created_at.desc(), Invitation.id.desc())


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
