"""When an invitation exists: scheduled when a ticket closes, cancelled when it reopens.

A close creates one pending invitation, due ``delay_minutes`` later; whether it is
sent or skipped is decided when it is due (:mod:`.invitations`).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import Table, select, update

from ..database import changed_rows, insert_rows
from ..extensions import db
from ..models import Ticket, TicketEvent
from ..types import utcnow
from .models import Invitation, InvitationPolicy, InvitationStatus, SkipReason
from .policy import current_policy

#: Unanswered invitations stay open this long; statuses that still await an answer.
OPEN_STATUSES = (InvitationStatus.PENDING, InvitationStatus.SENDING, InvitationStatus.SENT)


def schedule_invitation(ticket: Ticket, close_event: TicketEvent) -> Invitation | None:
    """Create the pending invitation for a close, unless this close already has one.

    The invitation is due ``delay_minutes`` after the ticket's ``closed_at``;
    the rules (opt-out, contact, fatigue, sampling) are applied when it is due.
    A close older than the link validity is recorded as skipped at once.
    """
    existing = db.session.scalar(
        select(Invitation).where(Invitation.close_event_id == close_event.id)
    )
    if existing is not None:
        return existing
    invitation = Invitation(
        ticket=ticket,
        customer=ticket.customer,
        close_event_id=close_event.id,
        **_new_invitation(
            ticket.closed_at or close_event.occurred_at,
            ticket.customer.language,
            current_policy(),
            utcnow(),
        ),
    )
    db.session.add(invitation)
    db.session.flush()
    return invitation


@dataclasses.dataclass(frozen=True)
class CloseToInvite:
    """A close just recorded, as :func:`schedule_invitations` needs it.

    ``closed_at`` is the ticket's (else the close event's time) and ``language``
    the customer's, both as they were when the close was applied.
    """

    ticket_id: int
    customer_id: int
    close_event_id: int
    closed_at: datetime
    language: str | None


def schedule_invitations(closes: Sequence[CloseToInvite]) -> None:
    """The bulk form of :func:`schedule_invitation` (the file import): one INSERT.

    Creates the pending invitation of each close, with the same rules. The
    closes must be new, recorded in this transaction (so none has an
    invitation yet: the unique ``close_event_id`` refuses a second one). The
    caller commits.
    """
    if not closes:
        return
    policy, now = current_policy(), utcnow()
    default_language = current_app.config["BABEL_DEFAULT_LOCALE"]
    insert_rows(
        cast(Table, Invitation.__table__),
        [
            {
                "ticket_id": close.ticket_id,
                "customer_id": close.customer_id,
                "close_event_id": close.close_event_id,
                **_new_invitation(
                    close.closed_at, close.language or default_language, policy, now
                ),
            }
            for close in closes
        ],
    )


def _new_invitation(
    closed_at: datetime, language: str | None, policy: InvitationPolicy, now: datetime
) -> dict[str, Any]:
    """The columns of a new invitation for a close at ``closed_at``: due ``delay_minutes``
    later; skipped at once as too old when its link would already have expired."""
    too_old = closed_at + timedelta(days=policy.link_valid_days) <= now
    return {
        "nonce": secrets.token_urlsafe(32),
        "language": language or current_app.config["BABEL_DEFAULT_LOCALE"],
        "send_after": closed_at + timedelta(minutes=policy.delay_minutes),
        "status": InvitationStatus.SKIPPED if too_old else InvitationStatus.PENDING,
        "skip_reason": SkipReason.TOO_OLD if too_old else None,
    }


def cancel_open_invitations(
    ticket: Ticket, reason: SkipReason = SkipReason.TICKET_REOPENED
) -> int:
    """Cancel the ticket's unanswered invitations (a reopen); return how many."""
    now = utcnow()
    result = db.session.execute(
        update(Invitation)
        .where(Invitation.ticket_id == ticket.id, Invitation.status.in_(OPEN_STATUSES))
        .values(status=InvitationStatus.CANCELLED, cancelled_at=now, skip_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    return max(changed_rows(result), 0)
