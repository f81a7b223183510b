"""Translated display names for the enum values people see on pages."""

from __future__ import annotations

import enum

from flask import Flask
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

from .models import Channel, EventType, Priority, Role, TicketStatus, Tier
from .surveys.models import InvitationStatus, QuestionKind, SkipReason, VersionStatus

LABELS: dict[enum.Enum, LazyString] = {
    TicketStatus.OPEN: _l("open"),
    TicketStatus.PENDING: _l("pending"),
    TicketStatus.RESOLVED: _l("resolved"),
    TicketStatus.CLOSED: _l("closed"),
    TicketStatus.REOPENED: _l("reopened"),
    Channel.PHONE: _l("phone"),
    Channel.CHAT: _l("chat"),
    Channel.EMAIL: _l("e-mail"),
    Channel.APP: _l("app"),
    Channel.WEB: _l("web form"),
    Channel.WECHAT: _l("WeChat"),
    Channel.SMS: _l("SMS"),
    Channel.SOCIAL: _l("social media"),
    Channel.IN_PERSON: _l("in person"),
    Channel.OTHER: _l("other"),
    Priority.P1: _l("P1 critical"),
    Priority.P2: _l("P2 high"),
    Priority.P3: _l("P3 medium"),
    Priority.P4: _l("P4 low"),
    Tier.VIP: _l("VIP"),
    Tier.STANDARD: _l("standard"),
    Role.ADMIN: _l("Admin"),
    Role.MANAGER: _l("Manager"),
    Role.ANALYST: _l("Analyst"),
    EventType.CLOSED: _l("closed"),
    EventType.REOPENED: _l("reopened"),
    EventType.UPDATED: _l("updated"),
    InvitationStatus.PENDING: _l("waiting to be sent"),
    InvitationStatus.SENDING: _l("being sent"),
    InvitationStatus.SENT: _l("sent"),
    InvitationStatus.ANSWERED: _l("answered"),
    InvitationStatus.SKIPPED: _l("not sent"),
    InvitationStatus.CANCELLED: _l("cancelled"),
    InvitationStatus.FAILED: _l("delivery failed"),
    SkipReason.OPTED_OUT: _l("customer opted out"),
    SkipReason.NO_CONTACT: _l("no e-mail or phone"),
    SkipReason.FATIGUE: _l("surveyed recently (fatigue cap)"),
    SkipReason.SAMPLED_OUT: _l("not in the sample"),
    SkipReason.NO_TEMPLATE: _l("no published survey fits"),
    SkipReason.TICKET_REOPENED: _l("ticket reopened"),
    SkipReason.TOO_OLD: _l("closed too long ago"),
    QuestionKind.CSAT: _l("CSAT (1–5)"),
    QuestionKind.NPS: _l("NPS (0–10)"),
    QuestionKind.CES: _l("CES (1–7)"),
    QuestionKind.TEXT: _l("free text"),
    VersionStatus.DRAFT: _l("draft"),
    VersionStatus.PUBLISHED: _l("published"),
    VersionStatus.RETIRED: _l("retired"),
}


def label(value: enum.Enum | None) -> str:
    """The translated name of an enum member ('' for None, the value if unlabelled)."""
    if value is None:
        return ""
    return str(LABELS.get(value, value.value))


def init_app(app: Flask) -> None:
    app.add_template_filter(label, "label")
