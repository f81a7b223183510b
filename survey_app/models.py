"""Core data model: customers, tickets, ticket events and staff users.

Survey, response, analysis and improvement tables live with their features;
every model shares :data:`survey_app.extensions.db` and its naming convention.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime
from typing import Any

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import JSON, Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import Model
from .types import UTCDateTime, utcnow


def str_enum(enum_cls: type[enum.Enum], name: str) -> Enum:
    """Store an enum by value as VARCHAR with a CHECK constraint (same on every database)."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
        length=max(len(m.value) for m in enum_cls),
    )


class Role(enum.StrEnum):
    """Staff roles, from the most to the least privileged."""

    ADMIN = "admin"
    MANAGER = "manager"
    ANALYST = "analyst"


class Tier(enum.StrEnum):
    VIP = "vip"
    STANDARD = "standard"


class Channel(enum.StrEnum):
    PHONE = "phone"
    CHAT = "chat"
    EMAIL = "email"
    APP = "app"
    WEB = "web"
    WECHAT = "wechat"
    SMS = "sms"
    SOCIAL = "social"
    IN_PERSON = "in_person"
    OTHER = "other"


class Priority(enum.StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


class TicketStatus(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"


class EventType(enum.StrEnum):
    CLOSED = "closed"
    REOPENED = "reopened"
    UPDATED = "updated"


class Customer(Model):
    """A person who raised tickets, as known to the helpdesk.

    ``external_id`` is the helpdesk's id, or ``email:<address>`` /
    ``phone:<number>`` when the helpdesk sends none (see intake).
    """

    __tablename__ = "customer"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(16), default="zh_Hans")
    tier: Mapped[Tier] = mapped_column(str_enum(Tier, "tier"), default=Tier.STANDARD, index=True)
    is_new: Mapped[bool] = mapped_column(default=False, index=True)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    tickets: Mapped[list[Ticket]] = relationship(back_populates="customer")

    def __repr__(self) -> str:
        return f"<Customer {self.source}:{self.external_id}>"


class Ticket(Model):
    """A support ticket, unique per (source, external_id).

    Timestamps are the helpdesk's; ``recorded_at`` / ``updated_at`` are ours.
    ``last_event_at`` is when the newest applied event happened at the
    helpdesk, so a late, older event cannot overwrite newer facts.
    """

    __tablename__ = "ticket"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_ticket_closed_at_team", "closed_at", "team"),
        Index("ix_ticket_closed_at_priority", "closed_at", "priority"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    subject: Mapped[str | None] = mapped_column(String(500))
    # No single-column index on channel, priority or closed_at: a handful of values each
    # (the ticket list scans created_at and keeps the matches), and closed_at leads
    # three composite indexes. Each index is one more entry to write per imported row.
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    priority: Mapped[Priority] = mapped_column(str_enum(Priority, "priority"))
    category: Mapped[str | None] = mapped_column(String(100), index=True)
    product_line: Mapped[str | None] = mapped_column(String(100), index=True)
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    team: Mapped[str | None] = mapped_column(String(100), index=True)
    agent: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[TicketStatus] = mapped_column(
        str_enum(TicketStatus, "ticket_status"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reopen_count: Mapped[int] = mapped_column(default=0)
    contact_count: Mapped[int] = mapped_column(default=1)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="tickets")
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id"
    )

    def __repr__(self) -> str:
        return f"<Ticket {self.source}:{self.external_id} {self.status}>"


class TicketEvent(Model):
    """One accepted change to a ticket, from the webhook or an import.

    ``idempotency_key`` is unique: a second delivery of the same event is
    recognised and changes nothing.
    """

    __tablename__ = "ticket_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    event: Mapped[EventType] = mapped_column(str_enum(EventType, "event_type"))
    origin: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    applied: Mapped[bool] = mapped_column(default=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)

    ticket: Mapped[Ticket] = relationship(back_populates="events")


class User(UserMixin, Model):
    """A staff account (admin, manager or analyst)."""

    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"), index=True)
    language: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    #: Part of every session's identity: raised at sign-out, which ends the sessions.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def get_id(self) -> str:
        """The session identity: the id, a stamp that changes with the password, and the
        session generation (raised at sign-out): a cookie from before either is refused."""
        stamp = hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]
        return f"{self.id}:{stamp}:{self.session_generation or 0}"

    def end_sessions(self) -> None:
        """End every session of this user, server-side (a replayed cookie is refused)."""
        self.session_generation = (self.session_generation or 0) + 1

    @property
    def is_active(self) -> bool:
        return self.active

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(
            password, method=current_app.config["PASSWORD_HASH_METHOD"]
        )

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def has_role(self, *roles: Role) -> bool:
        """True if the user holds one of ``roles``; admins hold every role."""
        return self.role == Role.ADMIN or self.role in roles

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class SignInThrottle(Model):
    """Failed sign-ins of one account from one client address, and that pair's pause.

    Counted per (account, address), so that failures from one address pause
    sign-ins from that address only: nobody can lock another person (an admin)
    out of their account by typing wrong passwords for it from elsewhere.
    """

    __tablename__ = "sign_in_throttle"
    __table_args__ = (UniqueConstraint("user_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class JobLease(Model):
    """Which process runs a periodic job now, until when (see ``survey_app.background``)."""

    __tablename__ = "job_lease"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
