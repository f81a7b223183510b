"""Invitation decisions: schedule on close, cancel on reopen, send or skip when due.

Every decision is recorded on the :class:`Invitation` row (sent, or skipped
with a reason), so response rates and skip reasons can be reported.

Sending is safe to run twice and from two dispatchers at once: an invitation
is *claimed* by a conditional UPDATE (pending → sending) before the message
goes out, so only one process ever mails it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from ..extensions import db
from ..models import Customer, Ticket, TicketEvent
from ..types import utcnow
from .delivery import DeliveryError, compose, sender_for
from .models import (
    DeliveryChannel,
    DeliveryLog,
    Invitation,
    InvitationStatus,
    SkipReason,
    SurveyResponse,
)
from .policy import current_policy
from .versions import ensure_default_template, version_for_ticket

log = logging.getLogger(__name__)

#: A claim older than this is considered abandoned (the process died) and retried.
CLAIM_TIMEOUT = timedelta(minutes=15)
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
    policy = current_policy()
    closed_at = ticket.closed_at or close_event.occurred_at
    invitation = Invitation(
        ticket=ticket,
        customer=ticket.customer,
        close_event_id=close_event.id,
        nonce=secrets.token_urlsafe(32),
        language=ticket.customer.language or current_app.config["BABEL_DEFAULT_LOCALE"],
        send_after=closed_at + timedelta(minutes=policy.delay_minutes),
        status=InvitationStatus.PENDING,
    )
    if closed_at + timedelta(days=policy.link_valid_days) <= utcnow():
        invitation.status = InvitationStatus.SKIPPED
        invitation.skip_reason = SkipReason.TOO_OLD
    db.session.add(invitation)
    db.session.flush()
    return invitation


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
    return result.rowcount or 0


@dataclasses.dataclass
class DispatchReport:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    reminded: int = 0

    def add(self, other: DispatchReport) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


def due_invitation_ids(now: datetime, limit: int = 500) -> list[int]:
    """Ids of pending invitations whose time has come, oldest first (and abandoned claims)."""
    stale = now - CLAIM_TIMEOUT
    query = (
        select(Invitation.id)
        .where(
            ((Invitation.status == InvitationStatus.PENDING) & (Invitation.send_after <= now))
            | ((Invitation.status == InvitationStatus.SENDING) & (Invitation.claimed_at <= stale))
        )
        .order_by(Invitation.send_after, Invitation.id)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def due_reminder_ids(now: datetime, limit: int = 500) -> list[int]:
    """Ids of sent, unanswered, unexpired invitations whose reminder is due."""
    query = (
        select(Invitation.id)
        .where(
            Invitation.status == InvitationStatus.SENT,
            Invitation.reminder_due_at <= now,
            Invitation.reminded_at.is_(None),
            Invitation.expires_at > now,
        )
        .order_by(Invitation.reminder_due_at, Invitation.id)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def _claim(invitation_id: int, now: datetime) -> bool:
    """Atomically take an invitation for sending; False if another process has it."""
    stale = now - CLAIM_TIMEOUT
    result = db.session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation_id,
            ((Invitation.status == InvitationStatus.PENDING) & (Invitation.send_after <= now))
            | ((Invitation.status == InvitationStatus.SENDING) & (Invitation.claimed_at <= stale)),
        )
        .values(status=InvitationStatus.SENDING, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def skip_reason_for(invitation: Invitation, now: datetime) -> SkipReason | None:
    """Why this invitation must not be sent now, or None to send it.

    Rules, in order: the ticket reopened; the customer opted out; no way to
    reach them; no published template fits; outside the sample; the fatigue
    cap (one invitation per ``fatigue_days``, detractors optionally exempt).
    """
    policy = current_policy()
    customer: Customer = invitation.customer
    if invitation.ticket.closed_at is None:
        return SkipReason.TICKET_REOPENED
    if customer.opted_out_at is not None:
        return SkipReason.OPTED_OUT
    if channel_for(customer) is None:
        return SkipReason.NO_CONTACT
    if invitation.template_version is None:
        return SkipReason.NO_TEMPLATE
    if not in_sample(invitation.nonce, policy.sampling_percent):
        return SkipReason.SAMPLED_OUT
    recent = db.session.scalar(
        select(Invitation.id)
        .where(
            Invitation.customer_id == customer.id,
            Invitation.id != invitation.id,
            Invitation.sent_at >= now - timedelta(days=policy.fatigue_days),
        )
        .limit(1)
    )
    if recent is not None and not (
        policy.exempt_detractors and last_answer_was_detractor(customer)
    ):
        return SkipReason.FATIGUE
    return None


def channel_for(customer: Customer) -> DeliveryChannel | None:
    """E-mail when there is an address; else the webhook gateway for a phone; else None."""
    if customer.email:
        return DeliveryChannel.EMAIL
    if customer.phone and current_app.config.get("SURVEY_WEBHOOK_URL"):
        return DeliveryChannel.WEBHOOK
    return None


def in_sample(nonce: str, percent: int) -> bool:
    """Deterministic sampling: the same invitation always gets the same answer."""
    if percent >= 100:
        return True
    bucket = int(hashlib.sha256(nonce.encode()).hexdigest()[:8], 16) % 100
    return bucket < max(percent, 0)


def last_answer_was_detractor(customer: Customer) -> bool:
    """True if the customer's latest NPS answer was 0–6."""
    nps = db.session.scalar(
        select(SurveyResponse.nps)
        .where(SurveyResponse.customer_id == customer.id, SurveyResponse.nps.is_not(None))
        .order_by(SurveyResponse.submitted_at.desc())
        .limit(1)
    )
    return nps is not None and nps <= 6


def retry_delay(attempts: int) -> timedelta:
    """Back-off after the n-th failed attempt: 5, 10, 20, 40 ... minutes, at most 6 hours."""
    return min(timedelta(minutes=5 * 2 ** max(attempts - 1, 0)), timedelta(hours=6))


def send_invitation(invitation_id: int, now: datetime | None = None) -> DispatchReport:
    """Decide and, if the rules allow, send one due invitation; commit the outcome.

    Safe to call twice or concurrently: only the caller that claims the row
    acts. An SMTP or gateway failure puts it back to pending with a back-off
    (and a retry count); after ``max_attempts`` it is marked failed.
    """
    now = now or utcnow()
    report = DispatchReport()
    if not _claim(invitation_id, now):
        return report
    invitation = db.session.get(Invitation, invitation_id)
    assert invitation is not None
    policy = current_policy()
    if invitation.template_version is None:
        invitation.template_version = version_for_ticket(invitation.ticket)
    reason = skip_reason_for(invitation, now)
    if reason is not None:
        invitation.status = InvitationStatus.SKIPPED
        invitation.skip_reason = reason
        db.session.commit()
        report.skipped += 1
        return report
    channel = channel_for(invitation.customer)
    assert channel is not None
    invitation.channel = channel
    db.session.flush()
    try:
        message = compose(invitation, "invitation")
        sender_for(channel).send(message)
    except DeliveryError as exc:
        invitation.attempts += 1
        invitation.last_error = str(exc)[:500]
        detail = {"error": str(exc)[:500], "attempt": invitation.attempts}
        db.session.add(
            DeliveryLog(invitation_id=invitation.id, kind="invitation", ok=False, detail=detail)
        )
        if invitation.attempts >= policy.max_attempts:
            invitation.status = InvitationStatus.FAILED
            report.failed += 1
        else:
            invitation.status = InvitationStatus.PENDING
            invitation.send_after = now + retry_delay(invitation.attempts)
            report.retried += 1
        log.warning("invitation %s not delivered (attempt %s): %s", invitation.id,
                    invitation.attempts, exc)  # fmt: skip
        db.session.commit()
        return report
    invitation.status = InvitationStatus.SENT
    invitation.attempts += 1
    invitation.sent_at = now
    invitation.expires_at = now + timedelta(days=policy.link_valid_days)
    if policy.reminder_after_days > 0:
        invitation.reminder_due_at = now + timedelta(days=policy.reminder_after_days)
    db.session.add(DeliveryLog(invitation_id=invitation.id, kind="invitation", ok=True,
                               detail={"channel": channel.value}))  # fmt: skip
    db.session.commit()
    report.sent += 1
    return report


def send_reminder(invitation_id: int, now: datetime | None = None) -> DispatchReport:
    """Send the one reminder of a sent, unanswered invitation (claimed like a send)."""
    now = now or utcnow()
    report = DispatchReport()
    result = db.session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation_id,
            Invitation.status == InvitationStatus.SENT,
            Invitation.reminded_at.is_(None),
            Invitation.reminder_due_at <= now,
            Invitation.expires_at > now,
        )
        .values(reminded_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount != 1:
        return report
    invitation = db.session.get(Invitation, invitation_id)
    assert invitation is not None
    if invitation.customer.opted_out_at is not None:
        return report
    try:
        sender_for(invitation.channel).send(compose(invitation, "reminder"))
    except DeliveryError as exc:
        # Try the reminder again later; it is only worth sending while the link is valid.
        invitation.reminded_at = None
        invitation.reminder_due_at = now + retry_delay(1)
        db.session.add(DeliveryLog(invitation_id=invitation.id, kind="reminder", ok=False,
                                   detail={"error": str(exc)[:500]}))  # fmt: skip
        db.session.commit()
        return report
    db.session.add(DeliveryLog(invitation_id=invitation.id, kind="reminder", ok=True, detail={}))
    db.session.commit()
    report.reminded += 1
    return report


def dispatch_due(now: datetime | None = None) -> DispatchReport:
    """Send (or skip) every due invitation and reminder once; return what happened."""
    now = now or utcnow()
    ensure_default_template()
    db.session.commit()
    report = DispatchReport()
    for invitation_id in due_invitation_ids(now):
        report.add(send_invitation(invitation_id, now))
    for invitation_id in due_reminder_ids(now):
        report.add(send_reminder(invitation_id, now))
    return report
