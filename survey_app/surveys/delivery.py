"""Composing invitation and reminder messages and sending them.

E-mail goes through a real SMTP server (Flask-Mail). Other channels (SMS,
WeChat, in-app) go through :class:`WebhookSender`, which POSTs the message and
link as signed JSON to ``SURVEY_WEBHOOK_URL`` for the organisation's gateway.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Protocol

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_mail import Message

from ..outbound import OutboundError, post_webhook, send_mail
from ..types import utcnow
from .links import survey_url, unsubscribe_url
from .models import DeliveryChannel, Invitation
from .policy import current_policy


class DeliveryError(RuntimeError):
    """The message could not be handed over; the invitation is retried later."""


@dataclasses.dataclass(frozen=True)
class OutgoingMessage:
    invitation_id: int
    kind: str  # "invitation" | "reminder"
    language: str
    subject: str
    text: str
    html: str
    link: str
    unsubscribe_link: str
    email: str | None
    phone: str | None


class Sender(Protocol):
    def send(self, message: OutgoingMessage) -> None:
        """Hand the message over or raise :class:`DeliveryError`."""


def compose(invitation: Invitation, kind: str, now: datetime | None = None) -> OutgoingMessage:
    """Render the invitation (or reminder) in the customer's language, as of ``now``.

    The first question's scale becomes one link per value (``?csat_overall=4``);
    following one only pre-selects the answer, the customer still submits.
    """
    now = now or utcnow()
    version = invitation.template_version
    assert version is not None, "a sendable invitation has a template version"
    first = version.questions[0]
    scale = first.kind.scale
    with force_locale(invitation.language):
        link = survey_url(invitation)
        choices = (
            [(value, survey_url(invitation, **{first.key: value}))
             for value in range(scale[0], scale[1] + 1)]
            if scale else []
        )  # fmt: skip
        context = {
            "invitation": invitation,
            "ticket": invitation.ticket,
            "customer": invitation.customer,
            "intro": version.intro.get(invitation.language, version.intro.get("en", "")).format(
                ticket=invitation.ticket.external_id
            ),
            "question": first.text_for(invitation.language),
            "question_kind": first.kind.value,
            "choices": choices,
            "link": link,
            "unsubscribe_link": unsubscribe_url(invitation),
            "reminder": kind == "reminder",
            "valid_days": max((invitation.expires_at - now).days, 1)
            if invitation.expires_at
            else current_policy().link_valid_days,
            "organisation": current_app.config["ORGANISATION_NAME"],
            "html_lang": invitation.language.replace("_", "-"),
        }
        subject = (
            _(
                "Reminder: how did we do with request %(ticket)s?",
                ticket=invitation.ticket.external_id,
            )
            if kind == "reminder"
            else _("How did we do with request %(ticket)s?", ticket=invitation.ticket.external_id)
        )
        text = render_template("surveys/email/invitation.txt", **context)
        html = render_template("surveys/email/invitation.html", **context)
    return OutgoingMessage(
        invitation_id=invitation.id,
        kind=kind,
        language=invitation.language,
        subject=subject,
        text=text,
        html=html,
        link=link,
        unsubscribe_link=context["unsubscribe_link"],
        email=invitation.customer.email,
        phone=invitation.customer.phone,
    )


class EmailSender:
    """Sends through the configured SMTP server (:func:`survey_app.outbound.send_mail`)."""

    def send(self, message: OutgoingMessage) -> None:
        if not message.email:
            raise DeliveryError("the customer has no e-mail address")
        mail_message = Message(
            subject=message.subject,
            recipients=[message.email],
            body=message.text,
            html=message.html,
            extra_headers={
                "List-Unsubscribe": f"<{message.unsubscribe_link}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "Auto-Submitted": "auto-generated",
                "X-ClosedLoop-Invitation": str(message.invitation_id),
            },
        )
        try:
            send_mail(mail_message)
        except OutboundError as exc:
            raise DeliveryError(str(exc)) from exc


class WebhookSender:
    """POSTs ``{"invitation_id", "kind", "language", "phone", "email", "text", "link"}``.

    Signed like incoming webhooks (``X-ClosedLoop-Signature`` over
    ``<timestamp>.<body>`` with ``SURVEY_WEBHOOK_SECRET``), through
    :func:`survey_app.outbound.post_webhook` (internal addresses refused).
    """

    def send(self, message: OutgoingMessage) -> None:
        url = current_app.config["SURVEY_WEBHOOK_URL"]
        if not url:
            raise DeliveryError("SURVEY_WEBHOOK_URL is not configured")
        payload = {
            "invitation_id": message.invitation_id,
            "kind": message.kind,
            "language": message.language,
            "phone": message.phone,
            "email": message.email,
            "subject": message.subject,
            "text": message.text,
            "link": message.link,
            "unsubscribe_link": message.unsubscribe_link,
        }
        try:
            post_webhook(str(url), payload, secret=current_app.config["SURVEY_WEBHOOK_SECRET"])
        except OutboundError as exc:
            raise DeliveryError(str(exc)) from exc


def sender_for(channel: DeliveryChannel) -> Sender:
    """The sender of a channel: SMTP for e-mail, the webhook gateway for the rest."""
    return EmailSender() if channel is DeliveryChannel.EMAIL else WebhookSender()
