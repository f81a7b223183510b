"""Closing the loop: the editable message per language and one row per (cycle, customer)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from survey_app.extensions import Model
from survey_app.models import str_enum
from survey_app.types import UTCDateTime, utcnow


class LoopMessageStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    #: Opted out (or lost the address) between the Act and the sending.
    SKIPPED = "skipped"
    #: Refused by the SMTP server ``MAX_ATTEMPTS`` times.
    FAILED = "failed"


class CloseLoopTemplate(Model):
    """The "what changed" message in one language; the built-in default applies until a
    manager saves one. ``{name}``, ``{cycle}`` and ``{what_changed}`` are filled in."""

    __tablename__ = "close_loop_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    language: Mapped[str] = mapped_column(String(16), unique=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class CloseLoopMessage(Model):
    """The message to one customer about one standardised cycle; unique per (cycle,
    customer), so a customer is told once per cycle however often the job runs."""

    __tablename__ = "close_loop_message"
    __table_args__ = (UniqueConstraint("cycle_id", "customer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("pdca_cycle.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    status: Mapped[LoopMessageStatus] = mapped_column(
        str_enum(LoopMessageStatus, "close_loop_status"),
        default=LoopMessageStatus.PENDING,
        index=True,
    )
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    language: Mapped[str | None] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(254))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
