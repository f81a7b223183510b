"""Root-cause cases: one case per low feedback item, many cases per root cause.

A :class:`FeedbackCase` is the quality team's work on one piece of feedback (a
survey response, or a ticket raised by hand): triage, classification, the
call-back to the customer. A :class:`RootCause` is the problem behind many
cases (problem management): it carries the 5 Why chain (:class:`WhyStep`,
ordered, each tagged with a fishbone category) and is what the Pareto counts.

A PDCA cycle will link many root causes (and a root cause may be worked on by
more than one cycle) through an association table owned by the PDCA models;
nothing here points at a cycle, so that table can be added without touching
these.

Severity is urgency × reach, each on 1-3, so 1, 2, 3, 4, 6 or 9 (see
:data:`SEVERITY_LEVELS`); the database checks that the three agree.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey_app.extensions import Model
from survey_app.models import Channel, Ticket, User, str_enum
from survey_app.surveys.models import SurveyResponse
from survey_app.types import UTCDateTime, utcnow


class CaseStatus(enum.StrEnum):
    #: In the triage queue, nobody has looked at it yet.
    NEW = "new"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    #: Not actionable (e.g. a mistaken score confirmed on the call-back).
    DISMISSED = "dismissed"


#: Statuses of a case still being worked.
OPEN_CASE_STATUSES = (CaseStatus.NEW, CaseStatus.IN_PROGRESS)


class CaseOrigin(enum.StrEnum):
    #: Opened by the low-feedback rule after the response was analysed.
    AUTO = "auto"
    #: Opened by a person from a response or a ticket.
    MANUAL = "manual"


class ProcessStep(enum.StrEnum):
    """Where in the handling of the ticket the problem arose (seed list, extended)."""

    RECEIVING_REQUEST = "receiving_request"
    VERIFYING_INFORMATION = "verifying_information"
    DESIGNING_SOLUTION = "designing_solution"
    IMPLEMENTING_SOLUTION = "implementing_solution"
    GIVING_FEEDBACK = "giving_feedback"
    FOLLOW_UP = "follow_up"


class ResponsibleParty(enum.StrEnum):
    """Who owns the fix: the seeds' four kinds of cause."""

    SYSTEM_DESIGN = "system_design"
    PROCESS_RULE = "process_rule"
    STAFF_EXECUTION = "staff_execution"
    RESOURCES = "resources"


class CallBackOutcome(enum.StrEnum):
    REACHED_SATISFIED = "reached_satisfied"
    REACHED_UNSATISFIED = "reached_unsatisfied"
    NO_ANSWER = "no_answer"
    LEFT_MESSAGE = "left_message"
    DECLINED = "declined"

    @property
    def completes(self) -> bool:
        """True if this call-back fulfils the duty to call back (the customer was reached)."""
        return self in COMPLETING_OUTCOMES


#: Outcomes after which the customer counts as called back; the others are attempts.
COMPLETING_OUTCOMES = frozenset(
    {
        CallBackOutcome.REACHED_SATISFIED,
        CallBackOutcome.REACHED_UNSATISFIED,
        CallBackOutcome.DECLINED,
    }
)


class RootCauseStatus(enum.StrEnum):
    #: Identified, being analysed.
    OPEN = "open"
    #: Analysis done; waiting for (or in) an improvement cycle.
    CONFIRMED = "confirmed"
    #: Fixed (a PDCA cycle standardised its fix).
    RESOLVED = "resolved"
    #: Not a real cause; left out of suggestions and the Pareto.
    REJECTED = "rejected"


#: Urgency and reach are each 1 (low / one customer), 2 (medium / a group of
#: customers: a team, product line or region) or 3 (high / many or all customers).
SCALE = (1, 2, 3)
#: Severity = urgency × reach, and the level each product is shown as.
SEVERITY_LEVELS = {1: "low", 2: "low", 3: "medium", 4: "medium", 6: "high", 9: "critical"}


class FeedbackCase(Model):
    """The quality team's case about one feedback item.

    ``response_id`` is unique: a response opens at most one case, however often
    it is analysed. A case opened by hand from a ticket without a survey
    answer has no response. ``callback_due_at`` is fixed when the case opens
    (the ticket's resolution + ``CALLBACK_DAYS``); ``called_back_at`` is the
    first call-back that reached the customer.
    """

    __tablename__ = "feedback_case"
    __table_args__ = (
        CheckConstraint("urgency IS NULL OR urgency BETWEEN 1 AND 3", name="urgency_scale"),
        CheckConstraint("reach IS NULL OR reach BETWEEN 1 AND 3", name="reach_scale"),
        CheckConstraint(
            "(urgency IS NULL AND reach IS NULL AND severity IS NULL)"
            " OR (urgency IS NOT NULL AND reach IS NOT NULL AND severity = urgency * reach)",
            name="severity_is_urgency_times_reach",
        ),
        Index("ix_feedback_case_status_due", "status", "callback_due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int | None] = mapped_column(ForeignKey("survey_response.id"), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    origin: Mapped[CaseOrigin] = mapped_column(str_enum(CaseOrigin, "case_origin"))
    #: Why the case opened, e.g. "NPS 3 ≤ 6; negative comment" (the rule's reasons).
    trigger: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[CaseStatus] = mapped_column(
        str_enum(CaseStatus, "case_status"), default=CaseStatus.NEW
    )
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    problem_type: Mapped[str | None] = mapped_column(String(40), index=True)
    urgency: Mapped[int | None]
    reach: Mapped[int | None]
    severity: Mapped[int | None] = mapped_column(index=True)
    touchpoint: Mapped[Channel | None] = mapped_column(str_enum(Channel, "channel"))
    process_step: Mapped[ProcessStep | None] = mapped_column(str_enum(ProcessStep, "process_step"))
    responsible_party: Mapped[ResponsibleParty | None] = mapped_column(
        str_enum(ResponsibleParty, "responsible_party"), index=True
    )

    root_cause_id: Mapped[int | None] = mapped_column(ForeignKey("root_cause.id"), index=True)
    linked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    callback_due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    called_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    response: Mapped[SurveyResponse | None] = relationship()
    ticket: Mapped[Ticket] = relationship()
    opened_by: Mapped[User | None] = relationship()
    root_cause: Mapped[RootCause | None] = relationship(back_populates="cases")
    call_backs: Mapped[list[CallBack]] = relationship(
        back_populates="case", order_by="CallBack.called_at", cascade="all, delete-orphan"
    )

    @property
    def severity_level(self) -> str | None:
        return SEVERITY_LEVELS.get(self.severity) if self.severity else None

    def callback_overdue(self, now: datetime) -> bool:
        """True if the customer has not been reached and the deadline has passed."""
        return (
            self.called_back_at is None
            and self.status is not CaseStatus.DISMISSED
            and now > self.callback_due_at
        )


class RootCause(Model):
    """A cause behind many feedback cases; analysed with a 5 Why chain."""

    __tablename__ = "root_cause"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    problem_type: Mapped[str | None] = mapped_column(String(40), index=True)
    #: Themes (keywords) the analyst attaches, on top of those of the linked feedback.
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[RootCauseStatus] = mapped_column(
        str_enum(RootCauseStatus, "root_cause_status"), default=RootCauseStatus.OPEN, index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    created_by: Mapped[User | None] = relationship()
    cases: Mapped[list[FeedbackCase]] = relationship(back_populates="root_cause")
    whys: Mapped[list[WhyStep]] = relationship(
        back_populates="root_cause", order_by="WhyStep.position", cascade="all, delete-orphan"
    )


class WhyStep(Model):
    """One "why?" of a root cause's 5 Why chain, at ``position`` 1, 2, 3 ...

    ``category`` is one of the configured fishbone categories
    (``FISHBONE_CATEGORIES``); it is checked when written, not by the
    database, so the list can change without a migration.
    """

    __tablename__ = "why_step"
    __table_args__ = (UniqueConstraint("root_cause_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    root_cause_id: Mapped[int] = mapped_column(ForeignKey("root_cause.id"), index=True)
    position: Mapped[int]
    statement: Mapped[str] = mapped_column(String(1000))
    category: Mapped[str] = mapped_column(String(40), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    root_cause: Mapped[RootCause] = relationship(back_populates="whys")


class CallBack(Model):
    """One call (or attempt) to the customer of a case: when, who, outcome."""

    __tablename__ = "call_back"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("feedback_case.id"), index=True)
    called_at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    outcome: Mapped[CallBackOutcome] = mapped_column(str_enum(CallBackOutcome, "callback_outcome"))
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    case: Mapped[FeedbackCase] = relationship(back_populates="call_backs")
    user: Mapped[User | None] = relationship()
