"""Translated display names for the enum values people see on pages: one registry for
every package, and the ``label`` template filter that reads it.

The registry is keyed by enum class, then member: the enums are ``StrEnum``, so members
of different classes with the same value are equal (``TicketStatus.PENDING ==
InvitationStatus.PENDING``) and one flat dict would give one of them the other's name.
``analysis`` and ``improvement`` register their enums in their ``init_app``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping

from flask import Flask, current_app
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

from .i18n import normalise_locale
from .models import Channel, EventType, Priority, Role, TicketStatus, Tier
from .surveys.models import (
    DeliveryChannel,
    InvitationStatus,
    QuestionKind,
    SentimentLabel,
    SkipReason,
    VersionStatus,
)


class EnumLabels(Mapping[enum.Enum, LazyString]):
    """Label of each registered enum member, looked up by its class first."""

    def __init__(self) -> None:
        self._by_class: dict[type[enum.Enum], dict[str, LazyString]] = {}

    def register(self, enum_cls: type[enum.Enum], names: Mapping[enum.Enum, LazyString]) -> None:
        """Name the members of ``enum_cls``; refuses (ValueError) a member of another class,
        a member left without a name, or a class named twice with different names."""
        strays = [m for m in names if not isinstance(m, enum_cls)]
        if strays:
            raise ValueError(f"{strays!r} are not members of {enum_cls.__name__}")
        missing = [m.value for m in enum_cls if m not in names]
        if missing:
            raise ValueError(f"{enum_cls.__name__}: no label for {missing}")
        by_value = {m.value: names[m] for m in enum_cls}
        known = self._by_class.get(enum_cls)
        if known is not None and known != by_value:
            raise ValueError(f"{enum_cls.__name__} is already labelled differently")
        self._by_class[enum_cls] = by_value

    @classmethod
    def of(cls, by_class: Mapping[type[enum.Enum], Mapping[enum.Enum, LazyString]]) -> EnumLabels:
        """A registry of these enums' names (each checked as :meth:`register` does)."""
        registry = cls()
        for enum_cls, names in by_class.items():
            registry.register(enum_cls, names)
        return registry

    def include(self, other: EnumLabels) -> None:
        """Register every enum of ``other`` here too."""
        for enum_cls in other.classes():
            self.register(enum_cls, {m: other[m] for m in enum_cls})

    def classes(self) -> list[type[enum.Enum]]:
        """The labelled enum classes."""
        return list(self._by_class)

    def __getitem__(self, member: enum.Enum) -> LazyString:
        try:
            return self._by_class[type(member)][member.value]
        except (KeyError, AttributeError):
            raise KeyError(member) from None

    def __iter__(self) -> Iterator[enum.Enum]:
        for enum_cls in self._by_class:
            yield from enum_cls

    def __len__(self) -> int:
        return sum(len(names) for names in self._by_class.values())


LABELS = EnumLabels()
LABELS.register(
    TicketStatus,
    {
        TicketStatus.OPEN: _l("open"),
        TicketStatus.PENDING: _l("pending"),
        TicketStatus.RESOLVED: _l("resolved"),
        TicketStatus.CLOSED: _l("closed"),
        TicketStatus.REOPENED: _l("reopened"),
    },
)
LABELS.register(
    Channel,
    {
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
    },
)
LABELS.register(
    Priority,
    {
        Priority.P1: _l("P1 critical"),
        Priority.P2: _l("P2 high"),
        Priority.P3: _l("P3 medium"),
        Priority.P4: _l("P4 low"),
    },
)
LABELS.register(Tier, {Tier.VIP: _l("VIP"), Tier.STANDARD: _l("standard")})
LABELS.register(
    Role, {Role.ADMIN: _l("Admin"), Role.MANAGER: _l("Manager"), Role.ANALYST: _l("Analyst")}
)
LABELS.register(
    EventType,
    {
        EventType.CLOSED: _l("closed"),
        EventType.REOPENED: _l("reopened"),
        EventType.UPDATED: _l("updated"),
    },
)
LABELS.register(
    InvitationStatus,
    {
        InvitationStatus.PENDING: _l("waiting to be sent"),
        InvitationStatus.SENDING: _l("being sent"),
        InvitationStatus.SENT: _l("sent"),
        InvitationStatus.ANSWERED: _l("answered"),
        InvitationStatus.SKIPPED: _l("not sent"),
        InvitationStatus.CANCELLED: _l("cancelled"),
        InvitationStatus.FAILED: _l("delivery failed"),
    },
)
LABELS.register(
    SkipReason,
    {
        SkipReason.OPTED_OUT: _l("customer opted out"),
        SkipReason.NO_CONTACT: _l("no e-mail or phone"),
        SkipReason.FATIGUE: _l("surveyed recently (fatigue cap)"),
        SkipReason.SAMPLED_OUT: _l("not in the sample"),
        SkipReason.NO_TEMPLATE: _l("no published survey fits"),
        SkipReason.TICKET_REOPENED: _l("ticket reopened"),
        SkipReason.TOO_OLD: _l("closed too long ago"),
    },
)
LABELS.register(
    QuestionKind,
    {
        QuestionKind.CSAT: _l("CSAT (1–5)"),
        QuestionKind.NPS: _l("NPS (0–10)"),
        QuestionKind.CES: _l("CES (1–7)"),
        QuestionKind.TEXT: _l("free text"),
    },
)
LABELS.register(
    VersionStatus,
    {
        VersionStatus.DRAFT: _l("draft"),
        VersionStatus.PUBLISHED: _l("published"),
        VersionStatus.RETIRED: _l("retired"),
    },
)
LABELS.register(
    SentimentLabel,
    {
        SentimentLabel.POSITIVE: _l("positive"),
        SentimentLabel.NEUTRAL: _l("neutral"),
        SentimentLabel.NEGATIVE: _l("negative"),
        SentimentLabel.NONE: _l("no text"),
    },
)
LABELS.register(
    DeliveryChannel,
    {DeliveryChannel.EMAIL: _l("e-mail"), DeliveryChannel.WEBHOOK: _l("webhook")},
)


#: Where a ticket event came from (``TicketEvent.origin``), as people read it.
ORIGIN_LABELS: dict[str, LazyString] = {
    "webhook": _l("helpdesk webhook"),
    "import": _l("file import"),
    "demo": _l("demo data"),
}


def origin_label(origin: str | None) -> str:
    """The name of a ticket event's origin ('' for None, an unknown origin as it is)."""
    if not origin:
        return ""
    return str(ORIGIN_LABELS.get(origin, origin))


def language_name(locale: str | None) -> str:
    """A customer's or user's language by its own name ("简体中文"), '' for none; an
    unsupported code as it is."""
    if not locale:
        return ""
    languages: dict[str, str] = current_app.config["LANGUAGES"]
    return languages.get(normalise_locale(locale) or locale, locale)


def label(value: enum.Enum | None) -> str:
    """The translated name of an enum member ('' for None, the value if unlabelled)."""
    if value is None:
        return ""
    try:
        return str(LABELS[value])
    except KeyError:
        return str(getattr(value, "value", value))


def init_app(app: Flask) -> None:
    app.add_template_filter(label, "label")
    app.add_template_filter(origin_label, "origin_label")
    app.add_template_filter(language_name, "language_name")
