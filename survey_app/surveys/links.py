"""Signed survey and unsubscribe links.

A link carries the invitation id and its random nonce, signed with the app's
secret key (itsdangerous). Ids cannot be guessed or changed, and a link of one
purpose is not valid for another (different salts).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import joinedload
from werkzeug.exceptions import Gone, NotFound

from ..extensions import db
from ..models import Channel, Customer, Priority, Ticket, Tier
from ..types import utcnow
from .models import Invitation, InvitationStatus

SURVEY_SALT = "closedloop.survey-link"
UNSUBSCRIBE_SALT = "closedloop.unsubscribe-link"

#: Never sent, so no customer can hold a real link to them.
UNSENT_STATUSES = (
    InvitationStatus.PENDING,
    InvitationStatus.SENDING,
    InvitationStatus.SKIPPED,
    InvitationStatus.FAILED,
)


class LinkNotFound(NotFound):
    """A tampered, unknown or never-sent link (404)."""


class LinkClosed(Gone):
    """A real link that can no longer be answered (410).

    ``reason`` is ``"expired"``, ``"cancelled"`` (the ticket reopened) or
    ``"opted_out"`` (the customer unsubscribed since); ``invitation`` says whose
    link it is, so the page speaks the customer's language.
    """

    def __init__(self, reason: str, invitation: Invitation | SurveyLink) -> None:
        super().__init__()
        self.reason = reason
        self.invitation = invitation


def _serializer(salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)


def make_token(invitation: Invitation, salt: str = SURVEY_SALT) -> str:
    return _serializer(salt).dumps([invitation.id, invitation.nonce])


def public_url(endpoint: str, **values: object) -> str:
    """An absolute URL on ``PUBLIC_URL``, the address customers reach the app at.

    Works without a request (the dispatcher runs in a worker or from cron).
    """
    base = urlsplit(current_app.config["PUBLIC_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "https"
    )
    return adapter.build(endpoint, values, force_external=True)


def survey_url(invitation: Invitation, **params: object) -> str:
    """The absolute survey link for ``invitation`` (``params`` pre-select answers)."""
    return public_url("survey.answer", token=make_token(invitation), **params)


def unsubscribe_url(invitation: Invitation) -> str:
    return public_url("survey.unsubscribe", token=make_token(invitation, UNSUBSCRIBE_SALT))


def _link_target(token: str, salt: str) -> tuple[int, str]:
    """The ``(invitation id, nonce)`` a link of purpose ``salt`` carries, or LinkNotFound."""
    try:
        invitation_id, nonce = _serializer(salt).loads(token)
    except (BadData, ValueError, TypeError):
        raise LinkNotFound from None
    if type(invitation_id) is not int or not isinstance(nonce, str):
        raise LinkNotFound
    return invitation_id, nonce


def _check_found(invitation: Invitation | SurveyLink | None, nonce: str) -> None:
    if (
        invitation is None
        or not hmac.compare_digest(invitation.nonce.encode(), nonce.encode())
        or invitation.status in UNSENT_STATUSES
    ):
        raise LinkNotFound


def invitation_from_token(token: str, salt: str = SURVEY_SALT) -> Invitation:
    """Return the sent invitation (ORM object) a link of purpose ``salt`` points at.

    Raises :class:`LinkNotFound` for a tampered, unknown or never-sent link,
    or a link made for another purpose. The survey page itself reads the
    lighter :class:`SurveyLink` (:func:`answerable_invitation`).
    """
    invitation_id, nonce = _link_target(token, salt)
    # With its ticket and customer in the same query: every page shows or checks them.
    invitation = db.session.get(
        Invitation,
        invitation_id,
        options=[joinedload(Invitation.ticket), joinedload(Invitation.customer)],
    )
    _check_found(invitation, nonce)
    assert invitation is not None  # _check_found refused a missing one
    return invitation


@dataclass(frozen=True, slots=True)
class LinkTicket:
    """The ticket facts the survey page shows and a response copies."""

    id: int
    external_id: str
    channel: Channel
    priority: Priority
    team: str | None
    agent: str | None
    category: str | None
    product_line: str | None
    region: str | None


@dataclass(frozen=True, slots=True)
class LinkCustomer:
    """The customer facts the survey page checks and a response copies."""

    id: int
    tier: Tier
    is_new: bool
    opted_out_at: datetime | None


@dataclass(frozen=True, slots=True)
class SurveyLink:
    """An invitation as the survey page needs it: plain data read in one Core query.

    The busiest page of the product: no ORM objects, identity map or lazy loads
    (about a tenth of a survey request's CPU under load). Attribute names are
    those of :class:`Invitation`, so :func:`closed_reason` and
    :func:`~.responses.submit_response` take either.
    """

    id: int
    nonce: str
    status: InvitationStatus
    language: str
    template_version_id: int | None
    expires_at: datetime | None
    ticket: LinkTicket
    customer: LinkCustomer


_LINK_PARTS: tuple[tuple[Any, type, str], ...] = (
    (Ticket, LinkTicket, "ticket_"),
    (Customer, LinkCustomer, "customer_"),
)


@cache
def _survey_link_statement() -> Select:
    """One SELECT of the invitation, its ticket and customer (built once, bind parameter)."""
    invitation = Invitation.__table__
    columns = [
        invitation.c[field.name]
        for field in fields(SurveyLink)
        if field.name not in ("ticket", "customer")
    ]
    for model, part, prefix in _LINK_PARTS:
        table = model.__table__
        columns += [table.c[field.name].label(prefix + field.name) for field in fields(part)]
    return (
        select(*columns)
        .join_from(invitation, Ticket.__table__, invitation.c.ticket_id == Ticket.__table__.c.id)
        .join(Customer.__table__, invitation.c.customer_id == Customer.__table__.c.id)
        .where(invitation.c.id == bindparam("invitation_id"))
    )


def _survey_link(invitation_id: int) -> SurveyLink | None:
    row = (
        db.session.execute(_survey_link_statement(), {"invitation_id": invitation_id})
        .mappings()
        .first()
    )
    if row is None:
        return None
    parts = {
        prefix[:-1]: part(**{field.name: row[prefix + field.name] for field in fields(part)})
        for _model, part, prefix in _LINK_PARTS
    }
    own = {field.name: row[field.name] for field in fields(SurveyLink) if field.name not in parts}
    return SurveyLink(**own, **parts)


def answerable_invitation(token: str) -> SurveyLink:
    """Return the invitation of a survey link that may be shown (or was answered).

    An answered invitation is returned: its page says so. Raises
    :class:`LinkNotFound` (404) for a bad link, :class:`LinkClosed` (410) for
    a cancelled or expired one, or one whose customer has opted out since.
    """
    invitation_id, nonce = _link_target(token, SURVEY_SALT)
    invitation = _survey_link(invitation_id)
    _check_found(invitation, nonce)
    assert invitation is not None
    if invitation.status is InvitationStatus.ANSWERED:
        return invitation
    reason = closed_reason(invitation)
    if reason is not None:
        raise LinkClosed(reason, invitation)
    return invitation


def closed_reason(invitation: Invitation | SurveyLink) -> str | None:
    """Why an unanswered, sent invitation can no longer be answered, or None."""
    if invitation.status is InvitationStatus.CANCELLED:
        return "cancelled"
    if invitation.expires_at is not None and invitation.expires_at <= utcnow():
        return "expired"
    if invitation.customer.opted_out_at is not None:
        return "opted_out"
    return None


#: Statuses whose link can never be answered: never sent, or cancelled by a reopen.
_NEVER_ANSWERABLE = (InvitationStatus.SKIPPED, InvitationStatus.CANCELLED, InvitationStatus.FAILED)


def survey_links(invitations: list[Invitation]) -> list[tuple[Invitation, str | None]]:
    """Each invitation with its survey link, or None when the link can never be answered
    (skipped or failed: never sent; cancelled: the ticket reopened). A pending
    invitation's link works once it is sent; an answered one's says it was answered."""
    return [
        (invitation, None if invitation.status in _NEVER_ANSWERABLE else survey_url(invitation))
        for invitation in invitations
    ]


def open_invitations(source: str, limit: int) -> list[Invitation]:
    """Up to ``limit`` sent, unanswered, unexpired invitations of tickets from ``source``
    whose customer has not opted out, the most recently sent first (their links open a
    survey to answer)."""
    now = utcnow()
    return list(
        db.session.scalars(
            select(Invitation)
            .join(Ticket, Ticket.id == Invitation.ticket_id)
            .join(Customer, Customer.id == Invitation.customer_id)
            .where(
                Ticket.source == source,
                Invitation.status == InvitationStatus.SENT,
                Invitation.expires_at > now,
                Customer.opted_out_at.is_(None),
            )
            .options(joinedload(Invitation.ticket))
            .order_by(Invitation.sent_at.desc(), Invitation.id.desc())
            .limit(limit)
        )
    )
