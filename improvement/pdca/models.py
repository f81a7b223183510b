"""PDCA cycles, their action items, stage log, Check measurements and sent reminders.

A :class:`PdcaCycle` works on one KPI in one scope (the dashboards' filters,
stored as JSON in the form of :meth:`analysis.metrics.Scope.to_json`'s
``filters``), links many root causes (:data:`cycle_root_cause`) and moves
Plan → Do → Check → Act → closed; every move is a :class:`StageChange`.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from improvement.root_causes.models import RootCause
from survey_app.extensions import Model, db
from survey_app.models import User, str_enum
from survey_app.types import UTCDateTime, utcnow


class Stage(enum.StrEnum):
    PLAN = "plan"
    DO = "do"
    CHECK = "check"
    ACT = "act"
    #: Act decided (standardise / adjust / abandon); later re-checks still run.
    CLOSED = "closed"


STAGE_ORDER = (Stage.PLAN, Stage.DO, Stage.CHECK, Stage.ACT, Stage.CLOSED)


class OpenActions(enum.StrEnum):
    """What the Act decision does with the cycle's actions still pending."""

    #: Moved into the next cycle the Act opens.
    CARRY = "carry"
    CANCEL = "cancel"
    #: Left pending on the closed cycle, their owners finish them later.
    KEEP = "keep"


class ActDecision(enum.StrEnum):
    STANDARDISE = "standardise"
    ADJUST = "adjust"
    ABANDON = "abandon"


class ActionStatus(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    BLOCKED = "blocked"
    DONE = "done"
    CANCELLED = "cancelled"


#: Statuses of an action still to be done (reminded, counted as overdue).
PENDING_ACTION_STATUSES = (ActionStatus.OPEN, ActionStatus.IN_PROGRESS, ActionStatus.BLOCKED)


class ReminderKind(enum.StrEnum):
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


class Verdict(enum.StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    NOT_ENOUGH_DATA = "not_enough_data"


class Comparison(enum.StrEnum):
    BEFORE_AFTER = "before_after"
    PILOT_CONTROL = "pilot_control"


cycle_root_cause = Table(
    "pdca_cycle_root_cause",
    db.metadata,
    Column("cycle_id", ForeignKey("pdca_cycle.id", ondelete="CASCADE"), primary_key=True),
    Column("root_cause_id", ForeignKey("root_cause.id", ondelete="CASCADE"), primary_key=True),
)


class PdcaCycle(Model):
    """One improvement cycle on one KPI.

    The baseline is ``compute(scope over baseline_start..baseline_end)`` of
    ``kpi``, stored when the plan is saved (value and n). ``approved_*``
    records the manager's approval of the plan; ``previous_id`` links the
    cycle an Act opened this one from; ``check_scheduled_for`` is the day the
    Check was scheduled for while its window was short of data.
    """

    __tablename__ = "pdca_cycle"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    stage: Mapped[Stage] = mapped_column(
        str_enum(Stage, "pdca_stage"), default=Stage.PLAN, index=True
    )
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pilot_scope: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    control_scope: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    kpi: Mapped[str] = mapped_column(String(60))
    baseline_start: Mapped[date]
    baseline_end: Mapped[date]
    baseline_value: Mapped[float | None]
    baseline_n: Mapped[int] = mapped_column(default=0)
    target_value: Mapped[float]
    target_date: Mapped[date]
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    do_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    check_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: A local day from which the periodic job moves the cycle (at Do) to Check, as soon as
    #: the Check window has the minimum sample (:func:`.stages.run_scheduled_checks`).
    check_scheduled_for: Mapped[date | None]
    act_decision: Mapped[ActDecision | None] = mapped_column(str_enum(ActDecision, "act_decision"))
    act_note: Mapped[str] = mapped_column(Text, default="")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("pdca_cycle.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    owner: Mapped[User] = relationship(foreign_keys=[owner_id])
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id])
    previous: Mapped[PdcaCycle | None] = relationship(remote_side=[id])
    root_causes: Mapped[list[RootCause]] = relationship(
        secondary=cycle_root_cause, order_by=RootCause.id
    )
    actions: Mapped[list[ActionItem]] = relationship(
        back_populates="cycle", order_by="ActionItem.deadline, ActionItem.id"
    )
    stage_log: Mapped[list[StageChange]] = relationship(
        back_populates="cycle", order_by="StageChange.id"
    )
    measurements: Mapped[list[CheckMeasurement]] = relationship(
        back_populates="cycle", order_by="CheckMeasurement.id"
    )


class StageChange(Model):
    """One move of a cycle (or its creation, ``from_stage`` None): who, when, from, to, note."""

    __tablename__ = "pdca_stage_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("pdca_cycle.id"), index=True)
    from_stage: Mapped[Stage | None] = mapped_column(str_enum(Stage, "pdca_from_stage"))
    to_stage: Mapped[Stage] = mapped_column(str_enum(Stage, "pdca_to_stage"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")

    cycle: Mapped[PdcaCycle] = relationship(back_populates="stage_log")
    user: Mapped[User | None] = relationship()


class ActionItem(Model):
    """An action of a cycle's plan: one owner, one deadline (a local date), a status."""

    __tablename__ = "pdca_action"
    __table_args__ = (Index("ix_pdca_action_status_deadline", "status", "deadline"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("pdca_cycle.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    deadline: Mapped[date]
    status: Mapped[ActionStatus] = mapped_column(
        str_enum(ActionStatus, "pdca_action_status"), default=ActionStatus.OPEN
    )
    evidence: Mapped[str] = mapped_column(Text, default="")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    cycle: Mapped[PdcaCycle] = relationship(back_populates="actions")
    owner: Mapped[User] = relationship()

    def overdue(self, today: date) -> bool:
        return self.status in PENDING_ACTION_STATUSES and self.deadline < today


class ActionReminder(Model):
    """A reminder sent for an action; unique per (action, kind), so each is sent once."""

    __tablename__ = "pdca_action_reminder"
    __table_args__ = (UniqueConstraint("action_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("pdca_action.id"), index=True)
    kind: Mapped[ReminderKind] = mapped_column(str_enum(ReminderKind, "pdca_reminder_kind"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    recipient: Mapped[str] = mapped_column(String(254))


class CheckMeasurement(Model):
    """One automatic Check: the KPI in two periods (or pilot vs control), the difference
    ``b − a`` with its 95 % CI, the test's p-value and the verdict.

    ``round`` is 0 for the Check itself, 30 / 60 / 90 for the re-checks; one
    row per (cycle, round, comparison).
    """

    __tablename__ = "pdca_measurement"
    __table_args__ = (UniqueConstraint("cycle_id", "round", "comparison"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("pdca_cycle.id"), index=True)
    round: Mapped[int] = mapped_column(default=0)
    comparison: Mapped[Comparison] = mapped_column(str_enum(Comparison, "pdca_comparison"))
    kpi: Mapped[str] = mapped_column(String(60))
    a_start: Mapped[date]
    a_end: Mapped[date]
    b_start: Mapped[date]
    b_end: Mapped[date]
    a_value: Mapped[float | None]
    a_n: Mapped[int]
    b_value: Mapped[float | None]
    b_n: Mapped[int]
    difference: Mapped[float | None]
    ci_low: Mapped[float | None]
    ci_high: Mapped[float | None]
    p_value: Mapped[float | None]
    test: Mapped[str] = mapped_column(String(40))
    verdict: Mapped[Verdict] = mapped_column(str_enum(Verdict, "pdca_verdict"))
    definitions_version: Mapped[str] = mapped_column(String(20))
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    cycle: Mapped[PdcaCycle] = relationship(back_populates="measurements")
