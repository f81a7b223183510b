"""KPI targets and the alerts raised when a KPI misses its target.

A :class:`KpiTarget` is one KPI's target over one scope (a JSON object of
filters on the dimensions of :class:`analysis.metrics.Scope`; ``{}`` is the
whole organisation), with its yellow / orange / red thresholds and how the
scheduled check notifies. An :class:`Alert` is one episode of a target being
missed: opened, maybe escalated, cleared. At most one alert per target is open
at a time; a partial unique index enforces it, so two schedulers that check at
once cannot both open one.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey_app.extensions import Model
from survey_app.models import str_enum
from survey_app.types import UTCDateTime, utcnow


class Level(enum.StrEnum):
    """Graded status of a KPI against its target, from good to worst."""

    OK = "ok"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"


#: Levels that raise an alert, in order of severity.
ALERT_LEVELS = (Level.YELLOW, Level.ORANGE, Level.RED)


class WebhookFormat(enum.StrEnum):
    """Body of the alert webhook: ClosedLoop's JSON, or the shape a chat bot accepts."""

    GENERIC = "generic"
    SLACK = "slack"
    WECOM = "wecom"
    DINGTALK = "dingtalk"


class KpiTarget(Model):
    """A target for one KPI over one scope, with graded thresholds.

    ``yellow`` < ``orange`` < ``red`` are gaps in the KPI's unit: how far the
    value may be on the bad side of ``target`` before that level (see
    :func:`analysis.targets.status.grade`). ``last_*`` record the latest
    scheduled evaluation, so the alert list can say which targets were not
    evaluated for lack of data.
    """

    __tablename__ = "kpi_target"
    __table_args__ = (
        CheckConstraint("yellow < orange AND orange < red", name="thresholds_increase"),
        CheckConstraint("window_days >= 1 AND window_days <= 366", name="window_days_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kpi: Mapped[str] = mapped_column(String(60), index=True)
    #: Dimension → list of accepted values (``customer_is_new``: a boolean); {} = everything.
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    target: Mapped[float] = mapped_column(Float)
    yellow: Mapped[float] = mapped_column(Float)
    orange: Mapped[float] = mapped_column(Float)
    red: Mapped[float] = mapped_column(Float)
    window_days: Mapped[int] = mapped_column(default=7)
    #: Whether the scheduled check evaluates it (status colours are shown either way).
    alerts_enabled: Mapped[bool] = mapped_column(default=True)
    #: E-mail addresses notified of its alerts.
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Webhook for its alerts; None = ``ALERT_WEBHOOK_URL``.
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    webhook_format: Mapped[WebhookFormat] = mapped_column(
        str_enum(WebhookFormat, "webhook_format"), default=WebhookFormat.GENERIC
    )
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    #: The latest scheduled evaluation: a Level value, or "low_confidence".
    last_status: Mapped[str | None] = mapped_column(String(20))
    last_value: Mapped[float | None] = mapped_column(Float)
    last_n: Mapped[int | None]
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    alerts: Mapped[list[Alert]] = relationship(
        back_populates="kpi_target", cascade="all, delete-orphan", passive_deletes=True
    )


class Alert(Model):
    """One episode of a target being missed, from its opening until it clears.

    ``level`` is the highest level notified so far (it only rises: escalation);
    ``current_level``, ``value``, ``n`` and ``gap`` are the latest check's.
    ``notified_level`` is the level whose notification went out, so a failed
    delivery is retried; ``notify_claimed_at`` claims a delivery for one process.
    """

    __tablename__ = "alert"
    __table_args__ = (
        Index(
            "uq_alert_open_per_target",
            "target_id",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
        Index("ix_alert_opened_at", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    target_id: Mapped[int] = mapped_column(
        ForeignKey("kpi_target.id", ondelete="CASCADE"), index=True
    )
    kpi: Mapped[str] = mapped_column(String(60))
    level: Mapped[Level] = mapped_column(str_enum(Level, "alert_level"))
    current_level: Mapped[Level] = mapped_column(str_enum(Level, "alert_current_level"))
    target_value: Mapped[float] = mapped_column(Float)
    value: Mapped[float] = mapped_column(Float)
    n: Mapped[int]
    gap: Mapped[float] = mapped_column(Float)
    window_start: Mapped[str] = mapped_column(String(10))
    window_end: Mapped[str] = mapped_column(String(10))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    notified_level: Mapped[Level | None] = mapped_column(str_enum(Level, "alert_notified_level"))
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notify_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notify_error: Mapped[str | None] = mapped_column(String(500))

    kpi_target: Mapped[KpiTarget] = relationship(back_populates="alerts")

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None
