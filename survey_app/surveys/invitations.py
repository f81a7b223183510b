"""Invitation decisions: send or skip when due (scheduling on close and cancelling on
reopen are :mod:`.scheduling`).

Every decision is recorded on the :class:`Invitation` row (sent, or skipped
with a reason), so response rates and skip reasons can be reported.

Sending is safe to run twice and from two dispatchers at once: an invitation
is *claimed* by a conditional UPDATE (pending → sending) and decided in the
same transaction, before the message goes out, so only one process ever mails
it. ``sending`` therefore means "decided to send": it counts for the fatigue
cap, so two invitations of one customer due together never both go out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..database import changed_rows
from ..extensions import db
from ..models import Customer
from ..outbound import failure_log_level
from ..types import utcnow
from .delivery import DeliveryError, OutgoingMessage, compose, sender_for
from .models import (
    DeliveryChannel,
    DeliveryLog,
    Invitation,
    InvitationPolicy,
    InvitationStatus,
    SkipReason,
    SurveyResponse,
)
from .policy import current_policy
from .versions import ensure_default_template, version_for_ticket

log = logging.getLogger(__name__)

#: A claim older than this is considered abandoned (the process died) and retried.
CLAIM_TIMEOUT = timedelta(minutes=15)


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
            # One being sent by another dispatcher right now counts as sent.
            (Invitation.sent_at >= now - timedelta(days=policy.fatigue_days))
            | (Invitation.status == InvitationStatus.SENDING),
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
    if customer.phone and current_app.config["SURVEY_WEBHOOK_URL"]:
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


def _compose(invitation: Invitation, kind: str, now: datetime) -> OutgoingMessage:
    """The message, or :class:`DeliveryError`: one that cannot be written is that
    invitation's failure (counted, retried, finally ``failed``), never the whole run's."""
    try:
        return compose(invitation, kind, now)
    except Exception as exc:  # noqa: BLE001  (any bug in one message; logged with its trace)
        log.exception("invitation %s: the %s could not be composed", invitation.id, kind)
        raise DeliveryError(f"the message could not be composed ({type(exc).__name__})") from exc


def retry_delay(attempts: int) -> timedelta:
    """Back-off after the n-th failed attempt: 5, 10, 20, 40 ... minutes, at most 6 hours."""
    return min(timedelta(minutes=5 * 2 ** max(attempts - 1, 0)), timedelta(hours=6))


def ensure_survey_defaults() -> None:
    """Create the policy row and the default template if missing; commit.

    Safe when several dispatchers start at once on an empty database: the
    loser of the race (a unique-constraint error) rolls back and uses the
    winner's rows.
    """
    db.session.commit()
    # A write comes first so that SQLite takes its write lock now: a concurrent
    # dispatcher then waits here instead of failing on a stale read snapshot.
    db.session.execute(
        update(InvitationPolicy).where(InvitationPolicy.id == 0).values(max_attempts=0)
    )
    try:
        current_policy()
        ensure_default_template()
        db.session.commit()
    except IntegrityError:
        db.session.rollback()


def _claim_and_decide(invitation_id: int, now: datetime) -> tuple[Invitation | None, bool]:
    """Claim a due invitation and record the decision in one transaction.

    Returns ``(None, False)`` when it is not due or another process has it,
    else ``(invitation, send)``; ``send`` is False when it was skipped (the
    reason is recorded). The customer's row is locked first (SQLite: the
    database), so two invitations of one customer are decided one after the
    other and the fatigue cap holds between concurrent dispatchers.
    """
    customer_id = db.session.scalar(
        select(Invitation.customer_id).where(Invitation.id == invitation_id)
    )
    # A fresh transaction that starts with a write: SQLite refuses to turn an older
    # read snapshot into a write, and takes its write lock only on a write.
    db.session.commit()
    if customer_id is None:
        return None, False
    # Customer before invitation, the order ticket intake writes them in (a reopen
    # may update the customer, then cancels its invitations): they cannot deadlock.
    db.session.execute(
        update(Customer)
        .where(Customer.id == customer_id)
        .values(updated_at=Customer.updated_at)
        .execution_options(synchronize_session=False)
    )
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
    if changed_rows(result) != 1:
        db.session.rollback()
        return None, False
    invitation = db.session.get(Invitation, invitation_id, populate_existing=True)
    assert invitation is not None
    if invitation.template_version is None:
        invitation.template_version = version_for_ticket(invitation.ticket)
    reason = skip_reason_for(invitation, now)
    if reason is not None:
        invitation.status = InvitationStatus.SKIPPED
        invitation.skip_reason = reason
        db.session.commit()
        return invitation, False
    channel = channel_for(invitation.customer)
    assert channel is not None
    invitation.channel = channel
    db.session.commit()
    return invitation, True


def _finish(invitation_id: int, **values: object) -> bool:
    """Record the outcome of a send unless the invitation was cancelled meanwhile."""
    result = db.session.execute(
        update(Invitation)
        .where(Invitation.id == invitation_id, Invitation.status == InvitationStatus.SENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return changed_rows(result) == 1


def send_invitation(invitation_id: int, now: datetime | None = None) -> DispatchReport:
    """Decide and, if the rules allow, send one due invitation; commit the outcome.

    Returns what happened (all zeros when it was not due or another process
    has it). Safe to call twice or concurrently: only the caller that claims
    the row acts. An SMTP or gateway failure puts it back to pending with a
    back-off and a retry count; after ``max_attempts`` it is marked failed.
    """
    ensure_survey_defaults()
    return _send_invitation(invitation_id, now or utcnow())


def _send_invitation(invitation_id: int, now: datetime) -> DispatchReport:
    report = DispatchReport()
    invitation, send = _claim_and_decide(invitation_id, now)
    if invitation is None:
        return report
    if not send:
        report.skipped += 1
        return report
    policy = current_policy()
    max_attempts, valid_days = policy.max_attempts, policy.link_valid_days
    reminder_days = policy.reminder_after_days
    channel = invitation.channel
    attempts = invitation.attempts + 1
    try:
        message = _compose(invitation, "invitation", now)
        # No transaction stays open while the network is slow.
        db.session.commit()
        sender_for(channel).send(message)
    except DeliveryError as exc:
        error = str(exc)[:500]
        if attempts >= max_attempts:
            _finish(invitation_id, status=InvitationStatus.FAILED, attempts=attempts,
                    last_error=error)  # fmt: skip
            report.failed += 1
        else:
            _finish(invitation_id, status=InvitationStatus.PENDING, attempts=attempts,
                    last_error=error, send_after=now + retry_delay(attempts))  # fmt: skip
            report.retried += 1
        db.session.add(DeliveryLog(invitation_id=invitation_id, kind="invitation", ok=False,
                                   detail={"error": error, "attempt": attempts}))  # fmt: skip
        db.session.commit()
        log.log(
            failure_log_level(exc),
            "invitation %s not delivered (attempt %s): %s",
            invitation_id,
            attempts,
            exc,
        )
        return report
    sent = _finish(
        invitation_id,
        status=InvitationStatus.SENT,
        attempts=attempts,
        last_error=None,
        sent_at=now,
        expires_at=now + timedelta(days=valid_days),
        reminder_due_at=now + timedelta(days=reminder_days) if reminder_days > 0 else None,
    )
    if not sent:
        # Cancelled (the ticket reopened) while the message was on its way. It
        # reached the customer all the same, so it counts for the fatigue cap.
        db.session.execute(
            update(Invitation)
            .where(Invitation.id == invitation_id)
            .values(sent_at=now, attempts=attempts)
            .execution_options(synchronize_session=False)
        )
    db.session.add(DeliveryLog(invitation_id=invitation_id, kind="invitation", ok=True,
                               detail={"channel": channel.value}))  # fmt: skip
    db.session.commit()
    report.sent += 1
    return report


def send_reminder(invitation_id: int, now: datetime | None = None) -> DispatchReport:
    """Send the one reminder of a sent, unanswered, unexpired invitation; commit.

    Claimed like a send (``reminded_at`` is set first), so it goes out at most
    once. A customer who opted out meanwhile gets none (recorded in the
    delivery log); a failed send is tried again later while the link is valid.
    """
    now = now or utcnow()
    report = DispatchReport()
    db.session.commit()
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
    if changed_rows(result) != 1:
        db.session.rollback()
        return report
    db.session.commit()
    invitation = db.session.get(Invitation, invitation_id, populate_existing=True)
    assert invitation is not None
    if invitation.customer.opted_out_at is not None:
        db.session.add(DeliveryLog(invitation_id=invitation_id, kind="reminder", ok=False,
                                   detail={"skipped": SkipReason.OPTED_OUT.value}))  # fmt: skip
        db.session.commit()
        return report
    channel = invitation.channel
    try:
        message = _compose(invitation, "reminder", now)
        db.session.commit()
        sender_for(channel).send(message)
    except DeliveryError as exc:
        db.session.execute(
            update(Invitation)
            .where(Invitation.id == invitation_id)
            .values(reminded_at=None, reminder_due_at=now + retry_delay(1))
            .execution_options(synchronize_session=False)
        )
        db.session.add(DeliveryLog(invitation_id=invitation_id, kind="reminder", ok=False,
                                   detail={"error": str(exc)[:500]}))  # fmt: skip
        db.session.commit()
        return report
    db.session.add(DeliveryLog(invitation_id=invitation_id, kind="reminder", ok=True,
                               detail={"channel": channel.value}))  # fmt: skip
    db.session.commit()
    report.reminded += 1
    return report


def dispatch_due(now: datetime | None = None) -> DispatchReport:
    """Send (or skip) every due invitation and reminder once; return what happened.

    Safe to run twice, from cron and a worker at once, or from two workers:
    every invitation and reminder is claimed before it is sent.
    """
    now = now or utcnow()
    ensure_survey_defaults()
    report = DispatchReport()
    for invitation_id in due_invitation_ids(now):
        report.add(_send_invitation(invitation_id, now))
    for invitation_id in due_reminder_ids(now):
        report.add(send_reminder(invitation_id, now))
    return report
