"""Survey templates, invitations, responses and answers.

A template has numbered versions; a published version never changes (editing
makes a new draft), and every response points at the version it answered.
Questions carry a ``metric`` (csat, nps, ces, comment) and a stable ``key``
across versions, so KPIs read the same question through every version.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from ..models import Channel, Customer, Priority, Ticket, Tier, str_enum
from ..types import UTCDateTime, utcnow


class QuestionKind(enum.StrEnum):
    """How a question is answered, and so which scale it has."""

    CSAT = "csat"  # 1-5, very dissatisfied .. very satisfied
    NPS = "nps"  # 0-10, not at all likely .. extremely likely
    CES = "ces"  # 1-7, very difficult .. very easy
    TEXT = "text"  # free text, up to 2 000 characters

    @property
    def scale(self) -> tuple[int, int] | None:
        return {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}.get(self.value)


class VersionStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


class InvitationStatus(enum.StrEnum):
    #: Waiting for its send time (or for a retry after a failed send).
    PENDING = "pending"
    #: Claimed by one dispatcher, being sent now.
    SENDING = "sending"
    SENT = "sent"
    ANSWERED = "answered"
    #: Never sent: ``skip_reason`` says why.
    SKIPPED = "skipped"
    #: The ticket reopened before the customer answered.
    CANCELLED = "cancelled"
    #: Gave up after the last retry: ``last_error`` says why.
    FAILED = "failed"


class SkipReason(enum.StrEnum):
    OPTED_OUT = "opted_out"
    NO_CONTACT = "no_contact"
    FATIGUE = "fatigue"
    SAMPLED_OUT = "sampled_out"
    NO_TEMPLATE = "no_template"
    TICKET_REOPENED = "ticket_reopened"
    #: Closed longer ago than a link stays valid (e.g. a historical import).
    TOO_OLD = "too_old"


class SentimentLabel(enum.StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"
    #: No text to judge (empty, emoji only): not a guess.
    NONE = "none"


class DeliveryChannel(enum.StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class SurveyTemplate(Model):
    """A named survey; targeted by channel and customer tier (empty = any)."""

    __tablename__ = "survey_template"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: Ticket channels this template serves; empty list = every channel.
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Customer tiers this template serves; empty list = every tier.
    tiers: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Higher wins when several templates match a ticket.
    priority: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    versions: Mapped[list[TemplateVersion]] = relationship(
        back_populates="template", order_by="TemplateVersion.number"
    )

    def matches(self, channel: Channel | str, tier: Tier | str) -> bool:
        """True if this template may serve a ticket on ``channel`` for a ``tier`` customer."""
        channel_value = getattr(channel, "value", channel)
        tier_value = getattr(tier, "value", tier)
        return (not self.channels or channel_value in self.channels) and (
            not self.tiers or tier_value in self.tiers
        )


class TemplateVersion(Model):
    """One numbered version of a template's questions; immutable once published."""

    __tablename__ = "template_version"
    __table_args__ = (UniqueConstraint("template_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("survey_template.id"), index=True)
    number: Mapped[int]
    status: Mapped[VersionStatus] = mapped_column(
        str_enum(VersionStatus, "version_status"), default=VersionStatus.DRAFT, index=True
    )
    #: Introductory text per language: {"en": ..., "zh_Hans": ...}.
    intro: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    template: Mapped[SurveyTemplate] = relationship(back_populates="versions")
    questions: Mapped[list[Question]] = relationship(
        back_populates="version", order_by="Question.position", cascade="all, delete-orphan"
    )


class Question(Model):
    """A question of one template version."""

    __tablename__ = "question"
    __table_args__ = (UniqueConstraint("version_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("template_version.id"), index=True)
    position: Mapped[int]
    #: Stable across versions: ``csat_speed``, ``nps``, ``comment`` ...
    key: Mapped[str] = mapped_column(String(50))
    kind: Mapped[QuestionKind] = mapped_column(str_enum(QuestionKind, "question_kind"))
    required: Mapped[bool] = mapped_column(default=False)
    #: Question text per language: {"en": ..., "zh_Hans": ...}.
    text: Mapped[dict[str, str]] = mapped_column(JSON)

    version: Mapped[TemplateVersion] = relationship(back_populates="questions")

    def text_for(self, locale: str) -> str:
        return self.text.get(locale) or self.text.get("en") or next(iter(self.text.values()), "")


class InvitationPolicy(Model):
    """The organisation's survey-invitation rules (a single row, id 1)."""

    __tablename__ = "invitation_policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    delay_minutes: Mapped[int] = mapped_column(default=60)
    link_valid_days: Mapped[int] = mapped_column(default=14)
    #: 0 turns reminders off.
    reminder_after_days: Mapped[int] = mapped_column(default=3)
    fatigue_days: Mapped[int] = mapped_column(default=30)
    sampling_percent: Mapped[int] = mapped_column(default=100)
    exempt_detractors: Mapped[bool] = mapped_column(default=False)
    max_attempts: Mapped[int] = mapped_column(default=5)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Invitation(Model):
    """One decision to survey (or not) the customer of a closed ticket.

    Created when a ticket closes; the dispatcher sends it when due, or records
    why it was skipped. The unique ``close_event_id`` makes a close invite at
    most once however often it is delivered.
    """

    __tablename__ = "invitation"
    __table_args__ = (
        Index("ix_invitation_status_due", "status", "send_after"),
        Index("ix_invitation_customer_sent", "customer_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    close_event_id: Mapped[int] = mapped_column(ForeignKey("ticket_event.id"), unique=True)
    template_version_id: Mapped[int | None] = mapped_column(ForeignKey("template_version.id"))
    channel: Mapped[DeliveryChannel] = mapped_column(
        str_enum(DeliveryChannel, "delivery_channel"), default=DeliveryChannel.EMAIL
    )
    status: Mapped[InvitationStatus] = mapped_column(
        str_enum(InvitationStatus, "invitation_status"), default=InvitationStatus.PENDING
    )
    skip_reason: Mapped[SkipReason | None] = mapped_column(str_enum(SkipReason, "skip_reason"))
    #: Random per invitation; part of the signed link, so links cannot be guessed.
    nonce: Mapped[str] = mapped_column(String(43))
    language: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: Not sent before this time (the delay after close, then retry back-off).
    send_after: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Indexed by ix_invitation_sent_answered (sent_at, answered_at) and, per customer,
    #: ix_invitation_customer_sent.
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminder_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))

    ticket: Mapped[Ticket] = relationship()
    customer: Mapped[Customer] = relationship()
    template_version: Mapped[TemplateVersion | None] = relationship()
    response: Mapped[SurveyResponse | None] = relationship(back_populates="invitation")


#: The response columns the dashboards filter on, each indexed with ``submitted_at``.
SLICED_COLUMNS = (
    "team",
    "agent",
    "channel",
    "priority",
    "product_line",
    "region",
    "customer_tier",
    "template_version_id",
)


#: The condition of ``ix_survey_response_negative_comments`` (see :class:`SurveyResponse`).
NEGATIVE_COMMENTS = (
    f"sentiment_label = '{SentimentLabel.NEGATIVE}' AND comment IS NOT NULL AND comment <> ''"
)


class SurveyResponse(Model):
    """A customer's submitted survey: one per invitation (a database constraint).

    The standard metrics are copied into typed columns for SQL aggregation;
    every answer is also kept, with its question, in :class:`Answer`. The
    ticket's team, agent, channel, priority ... are kept as they were when the
    customer answered: credit goes to who handled the ticket.
    """

    __tablename__ = "survey_response"
    __table_args__ = (
        Index("ix_survey_response_submitted_team", "submitted_at", "team"),
        # A filter on a dimension comes with a period: one index answers both (the
        # dashboards' raw queries: themes, aspects, the responses behind a number).
        *(
            Index(f"ix_survey_response_{column}_submitted", column, "submitted_at")
            for column in SLICED_COLUMNS
            if column != "team"
        ),
        # The team, the filter most views have, with every other filter's column after the
        # period: a view with a team and more filters rejects responses in the index and reads
        # only the matching ones (the themes of a year of a team, a region and a priority:
        # 128 -> 20 ms on SQLite at a million responses). PostgreSQL keeps the id in it, so
        # the join to keywords and aspects is answered from the index too.
        Index(
            "ix_survey_response_team_submitted_values",
            "team",
            "submitted_at",
            *(column for column in SLICED_COLUMNS if column != "team"),
            "customer_is_new",
            postgresql_include=["id"],
        ),
        # The commented negative responses, newest first: the themes' examples walk them
        # (``analysis.dashboards.queries``, whose conditions name these terms as literals so
        # the planner can prove them). PostgreSQL otherwise gathered every negative response
        # of the period for a year with a region, a priority and a product line: 69 -> 2 ms.
        Index(
            "ix_survey_response_negative_comments",
            "submitted_at",
            "id",
            sqlite_where=text(NEGATIVE_COMMENTS),
            postgresql_where=text(NEGATIVE_COMMENTS),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitation.id"), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    template_version_id: Mapped[int] = mapped_column(ForeignKey("template_version.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    language: Mapped[str] = mapped_column(String(16))

    csat_overall: Mapped[int | None]
    csat_speed: Mapped[int | None]
    csat_professionalism: Mapped[int | None]
    csat_attitude: Mapped[int | None]
    csat_effectiveness: Mapped[int | None]
    nps: Mapped[int | None] = mapped_column(index=True)
    ces: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(Text)

    # Text analytics of the comment, filled in the background (see ``analysis``).
    sentiment_score: Mapped[float | None]
    sentiment_label: Mapped[SentimentLabel | None] = mapped_column(
        str_enum(SentimentLabel, "sentiment_label"), index=True
    )
    sentiment_language: Mapped[str | None] = mapped_column(String(16))
    #: Engine and model version that produced the score, e.g. "nb-jieba:2026.11.22-1".
    sentiment_model: Mapped[str | None] = mapped_column(String(80))
    keywords: Mapped[list[str] | None] = mapped_column(JSON)
    problem_type: Mapped[str | None] = mapped_column(String(40), index=True)
    #: Why score and text disagree (e.g. NPS 10 with an angry comment), or None.
    contradiction: Mapped[str | None] = mapped_column(String(200))
    #: When the text was last analysed; None means still to do.
    analysed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)

    # The ticket as it was when answered.
    team: Mapped[str | None] = mapped_column(String(100))
    agent: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "channel"))
    priority: Mapped[Priority] = mapped_column(str_enum(Priority, "priority"))
    category: Mapped[str | None] = mapped_column(String(100))
    product_line: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    customer_tier: Mapped[Tier] = mapped_column(str_enum(Tier, "tier"))
    customer_is_new: Mapped[bool] = mapped_column(default=False)

    invitation: Mapped[Invitation] = relationship(back_populates="response")
    answers: Mapped[list[Answer]] = relationship(
        back_populates="response", cascade="all, delete-orphan"
    )


#: Response columns filled from the question with that key.
METRIC_COLUMNS = (
    "csat_overall",
    "csat_speed",
    "csat_professionalism",
    "csat_attitude",
    "csat_effectiveness",
    "nps",
    "ces",
    "comment",
)


class Answer(Model):
    """One answer; a skipped optional question is stored with ``skipped`` true."""

    __tablename__ = "answer"
    __table_args__ = (UniqueConstraint("response_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("survey_response.id"), index=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("question.id"), index=True)
    question_key: Mapped[str] = mapped_column(String(50))
    value: Mapped[int | None]
    text: Mapped[str | None] = mapped_column(Text)
    skipped: Mapped[bool] = mapped_column(default=False)

    response: Mapped[SurveyResponse] = relationship(back_populates="answers")
    question: Mapped[Question] = relationship()


class DeliveryLog(Model):
    """Every message sent or attempted for an invitation (invitation or reminder)."""

    __tablename__ = "delivery_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitation.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # invitation | reminder
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ok: Mapped[bool]
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
