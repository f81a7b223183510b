"""Signed survey and unsubscribe links.

A link carries the invitation id and its random nonce, signed with the app's
secret key (itsdangerous). Ids cannot be guessed or changed, and a link of one
purpose is not valid for another (different salts).
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy.orm import joinedload
from werkzeug.exceptions import Gone, NotFound

from ..extensions import db
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

    def __init__(self, reason: str, invitation: Invitation) -> None:
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


def invitation_from_token(token: str, salt: str = SURVEY_SALT) -> Invitation:
    """Return the sent invitation a link of purpose ``salt`` points at.

    Raises :class:`LinkNotFound` for a tampered, unknown or never-sent link,
    or a link made for another purpose.
    """
    try:
        invitation_id, nonce = _serializer(salt).loads(token)
    except (BadData, ValueError, TypeError):
        raise LinkNotFound from None
    if type(invitation_id) is not int or not isinstance(nonce, str):
        raise LinkNotFound
    # With its ticket and customer in the same query: every page shows or checks them.
    invitation = db.session.get(
        Invitation,
        invitation_id,
        options=[joinedload(Invitation.ticket), joinedload(Invitation.customer)],
    )
    if (
        invitation is None
        or not hmac.compare_digest(invitation.nonce.encode(), nonce.encode())
        or invitation.status in UNSENT_STATUSES
    ):
        raise LinkNotFound
    return invitation


def answerable_invitation(token: str) -> Invitation:
    """Return the invitation of a survey link that may be shown (or was answered).

    An answered invitation is returned: its page says so. Raises
    :class:`LinkNotFound` (404) for a bad link, :class:`LinkClosed` (410) for
    a cancelled or expired one, or one whose customer has opted out since.
    """
    invitation = invitation_from_token(token, SURVEY_SALT)
    if invitation.status is InvitationStatus.ANSWERED:
        return invitation
    reason = closed_reason(invitation)
    if reason is not None:
        raise LinkClosed(reason, invitation)
    return invitation


def closed_reason(invitation: Invitation) -> str | None:
    """Why an unanswered, sent invitation can no longer be answered, or None."""
    if invitation.status is InvitationStatus.CANCELLED:
        return "cancelled"
    if invitation.expires_at is not None and invitation.expires_at <= utcnow():
        return "expired"
    if invitation.customer.opted_out_at is not None:
        return "opted_out"
    return None
