"""Signed survey and unsubscribe links.

A link carries the invitation id and its random nonce, signed with the app's
secret key (itsdangerous). Ids cannot be guessed or changed, and a link of one
purpose is not valid for another (different salts).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import abort, current_app
from itsdangerous import BadSignature, URLSafeSerializer

from ..extensions import db
from ..types import utcnow
from .models import Invitation, InvitationStatus

SURVEY_SALT = "closedloop.survey-link"
UNSUBSCRIBE_SALT = "closedloop.unsubscribe-link"


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
    """Return the invitation a link points at, or abort.

    404 for a tampered, unknown or never-sent link; 410 for a cancelled or
    expired one. An answered invitation is returned: the page says so.
    """
    try:
        invitation_id, nonce = _serializer(salt).loads(token)
    except (BadSignature, ValueError, TypeError):
        abort(404)
    if not isinstance(invitation_id, int):
        abort(404)
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.nonce != nonce:
        abort(404)
    if invitation.status in (InvitationStatus.PENDING, InvitationStatus.SENDING,
                             InvitationStatus.SKIPPED, InvitationStatus.FAILED):  # fmt: skip
        abort(404)
    if salt == SURVEY_SALT and invitation.status is not InvitationStatus.ANSWERED:
        if invitation.status is InvitationStatus.CANCELLED:
            abort(410)
        if invitation.expires_at is not None and invitation.expires_at <= utcnow():
            abort(410)
    return invitation
