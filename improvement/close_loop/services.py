"""Telling customers what changed, and whether they came back happier.

When a cycle is standardised at Act, :func:`queue_close_loop` records one
:class:`~.models.CloseLoopMessage` per customer linked to it (cycle → root
causes → feedback cases → their tickets' customers), leaving out opted-out
customers and those without an e-mail address; the unique (cycle, customer)
key means nobody is queued twice. The periodic job :func:`send_close_loop_messages`
sends them outside any request: each row is claimed by a conditional UPDATE
(so two workers never send the same one), re-checked for an opt-out, sent in
the customer's language, and marked sent. A claim older than
``CLAIM_TIMEOUT`` is retried; after ``MAX_ATTEMPTS`` refusals a row is failed.

:func:`recovery_rate` is the share of those customers whose next survey
answer after the Act is no longer low, by the root-cause rule's thresholds
(low: NPS ≤ ``nps_max`` or any CSAT ≤ ``csat_max``; a missing answer is not
low), computed in one SQL query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from html import escape

from flask import current_app
from flask_babel import gettext as _
from flask_mail import Message
from sqlalchemy import and_, case, exists, func, insert, literal, or_, select, update

from improvement.pdca.models import PdcaCycle, cycle_root_cause
from improvement.root_causes.common import current_rule
from improvement.root_causes.models import FeedbackCase
from survey_app.database import changed_rows
from survey_app.extensions import db
from survey_app.models import Customer, Ticket, User
from survey_app.outbound import OutboundError, failure_log_level, send_mail
from survey_app.surveys.links import unsubscribe_url
from survey_app.surveys.models import Invitation, SurveyResponse
from survey_app.types import UTCDateTime, utcnow

from .models import CloseLoopMessage, CloseLoopTemplate, LoopMessageStatus

#: Languages the message is written in; a customer in another one gets English.
LANGUAGES = ("zh_Hans", "en")
PLACEHOLDERS = ("name", "cycle", "what_changed")
MAX_SUBJECT = 200
MAX_BODY = 5000
MAX_ATTEMPTS = 5
CLAIM_TIMEOUT = timedelta(minutes=15)
BATCH_SIZE = 200
CSAT_COLUMNS = (
    "csat_overall",
    "csat_speed",
    "csat_professionalism",
    "csat_attitude",
    "csat_effectiveness",
)

#: The built-in messages (subject, body), used until a manager saves one.
DEFAULT_TEMPLATES: dict[str, tuple[str, str]] = {
    "zh_Hans": (
        "感谢您的反馈：我们做出了改进",
        "{name}，您好：\n\n感谢您之前给我们的反馈。根据您和其他客户的意见，"
        "我们针对“{cycle}”做出了以下改进：\n\n{what_changed}\n\n"
        "欢迎您继续告诉我们您的感受。",
    ),
    "en": (
        "Thank you for your feedback: here is what we changed",
        "Dear {name},\n\nThank you for the feedback you gave us. Based on what you and "
        'other customers told us, we have improved "{cycle}":\n\n{what_changed}\n\n'
        "Please keep telling us how we are doing.",
    ),
}

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class CloseLoopError(ValueError):
    """Bad template input; the message says why. Nothing was saved."""


# --- the template ------------------------------------------------------------------------


def message_language(language: str | None) -> str:
    """The template language for a customer's language (Chinese variants → zh_Hans)."""
    if language and language.lower().startswith("zh"):
        return "zh_Hans"
    return language if language in LANGUAGES else "en"


def get_template(language: str) -> tuple[str, str]:
    """``(subject, body)`` in ``language``: the saved one, else the default."""
    saved = db.session.scalar(
        select(CloseLoopTemplate).where(CloseLoopTemplate.language == language)
    )
    if saved is not None:
        return saved.subject, saved.body
    return DEFAULT_TEMPLATES[message_language(language)]


def check_template(subject: str, body: str) -> tuple[str, str]:
    """Trimmed ``(subject, body)``; refuses empty or too long text and unknown placeholders."""
    subject, body = (subject or "").strip(), (body or "").strip()
    if not subject or len(subject) > MAX_SUBJECT or "\n" in subject or "\r" in subject:
        raise CloseLoopError(_("The subject needs 1-%(n)s characters on one line.", n=MAX_SUBJECT))
    if not body or len(body) > MAX_BODY:
        raise CloseLoopError(_("The body needs 1-%(n)s characters.", n=MAX_BODY))
    for text in (subject, body):
        for name in _PLACEHOLDER.findall(text):
            if name not in PLACEHOLDERS:
                raise CloseLoopError(
                    _(
                        "Unknown placeholder {%(name)s}; use %(known)s.",
                        name=name,
                        known=", ".join("{" + p + "}" for p in PLACEHOLDERS),
                    )
                )
    return subject, body


def save_template(language: str, subject: str, body: str, user: User | None) -> CloseLoopTemplate:
    """Store the message of ``language``; flush. Refuses an unknown language and bad text."""
    if language not in LANGUAGES:
        raise CloseLoopError(_("Unknown language."))
    subject, body = check_template(subject, body)
    saved = db.session.scalar(
        select(CloseLoopTemplate).where(CloseLoopTemplate.language == language)
    )
    if saved is None:
        saved = CloseLoopTemplate(language=language, subject=subject, body=body)
        db.session.add(saved)
    saved.subject, saved.body = subject, body
    saved.updated_by_id = user.id if user is not None else None
    db.session.flush()
    return saved


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


def _fill(text: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def render_message(
    subject: str,
    body: str,
    *,
    name: str,
    cycle: str,
    what_changed: str,
    unsubscribe: str | None = None,
) -> RenderedMessage:
    """Fill the placeholders; the HTML part escapes the template and every value (user text),
    one paragraph per blank-line block; the unsubscribe link goes at the end of both parts."""
    values = {"name": name, "cycle": cycle, "what_changed": what_changed}
    text = _fill(body, values)
    escaped = {k: escape(v) for k, v in values.items()}
    paragraphs = [
        "<p>" + _fill(escape(block), escaped).replace("\n", "<br>") + "</p>"
        for block in re.split(r"\n\s*\n", body)
        if block.strip()
    ]
    if unsubscribe:
        text += "\n\n" + _("Unsubscribe: %(link)s", link=unsubscribe)
        paragraphs.append(
            f'<p style="font-size:small"><a href="{escape(unsubscribe)}">'
            f"{escape(_('Unsubscribe'))}</a></p>"
        )
    html = "<!doctype html><html><body>" + "".join(paragraphs) + "</body></html>"
    return RenderedMessage(_fill(subject, values).replace("\n", " "), text, html)


# --- queueing and sending ----------------------------------------------------------------


def linked_customers(cycle_id: int):  # noqa: ANN201  (a Select)
    """The ids of the reachable customers linked to a cycle (no opt-out, an e-mail address)."""
    return (
        select(Customer.id)
        .join(Ticket, Ticket.customer_id == Customer.id)
        .join(FeedbackCase, FeedbackCase.ticket_id == Ticket.id)
        .join(cycle_root_cause, cycle_root_cause.c.root_cause_id == FeedbackCase.root_cause_id)
        .where(
            cycle_root_cause.c.cycle_id == cycle_id,
            Customer.opted_out_at.is_(None),
            Customer.email.is_not(None),
            Customer.email != "",
        )
        .distinct()
    )


def queue_close_loop(cycle: PdcaCycle) -> int:
    """Record a pending message for every reachable linked customer not yet recorded for
    ``cycle`` (one INSERT ... SELECT); return how many were added. The caller commits."""
    customers = linked_customers(cycle.id).subquery()
    already = exists().where(
        CloseLoopMessage.cycle_id == cycle.id, CloseLoopMessage.customer_id == customers.c.id
    )
    now = utcnow()
    rows = select(
        literal(cycle.id),
        customers.c.id,
        literal(LoopMessageStatus.PENDING.value),
        literal(now, UTCDateTime()),
        literal(0),
    ).where(~already)
    result = db.session.execute(
        insert(CloseLoopMessage).from_select(
            ["cycle_id", "customer_id", "status", "queued_at", "attempts"], rows
        )
    )
    db.session.flush()
    count = max(changed_rows(result), 0)
    current_app.logger.info("cycle %s: %s close-the-loop messages queued", cycle.id, count)
    return count


@dataclass(frozen=True)
class SendReport:
    sent: int
    skipped: int
    failed: int


def _latest_invitation(customer_id: int) -> Invitation | None:
    return db.session.scalar(
        select(Invitation)
        .where(Invitation.customer_id == customer_id)
        .order_by(Invitation.id.desc())
        .limit(1)
    )


def _message_for(row: CloseLoopMessage, customer: Customer, cycle: PdcaCycle) -> Message:
    from flask_babel import force_locale

    language = message_language(customer.language)
    subject, body = get_template(language)
    invitation = _latest_invitation(customer.id)
    with force_locale(language):
        rendered = render_message(
            subject,
            body,
            name=customer.name or customer.email or "",
            cycle=cycle.title,
            what_changed=cycle.act_note or cycle.title,
            unsubscribe=unsubscribe_url(invitation) if invitation is not None else None,
        )
    row.language = language
    assert customer.email, "only customers with an address are sent a message"
    return Message(
        subject=rendered.subject,
        recipients=[customer.email],
        body=rendered.text,
        html=rendered.html,
        extra_headers={
            "Auto-Submitted": "auto-generated",
            "X-ClosedLoop-Cycle": str(cycle.id),
        },
    )


def _claim(message_id: int) -> bool:
    now = utcnow()
    claimed = db.session.execute(
        update(CloseLoopMessage)
        .where(
            CloseLoopMessage.id == message_id,
            CloseLoopMessage.status == LoopMessageStatus.PENDING,
            or_(
                CloseLoopMessage.claimed_at.is_(None),
                CloseLoopMessage.claimed_at < now - CLAIM_TIMEOUT,
            ),
        )
        .values(claimed_at=now, attempts=CloseLoopMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return changed_rows(claimed) == 1


def send_close_loop_messages(limit: int = BATCH_SIZE) -> SendReport:
    """Send up to ``limit`` pending close-the-loop messages, committing after each; return
    how many were sent, skipped (opted out since) and refused (retried next round)."""
    now = utcnow()
    ids = db.session.scalars(
        select(CloseLoopMessage.id)
        .where(
            CloseLoopMessage.status == LoopMessageStatus.PENDING,
            or_(
                CloseLoopMessage.claimed_at.is_(None),
                CloseLoopMessage.claimed_at < now - CLAIM_TIMEOUT,
            ),
        )
        .order_by(CloseLoopMessage.id)
        .limit(limit)
    ).all()
    sent = skipped = failed = 0
    for message_id in ids:
        if not _claim(message_id):
            continue
        row = db.session.get(CloseLoopMessage, message_id, populate_existing=True)
        assert row is not None
        customer = db.session.get(Customer, row.customer_id)
        cycle = db.session.get(PdcaCycle, row.cycle_id)
        assert customer is not None and cycle is not None
        if customer.opted_out_at is not None or not customer.email:
            row.status = LoopMessageStatus.SKIPPED
            db.session.commit()
            skipped += 1
            continue
        try:
            send_mail(_message_for(row, customer, cycle))
        except OutboundError as exc:
            current_app.logger.log(
                failure_log_level(exc),
                "close-the-loop message %s not sent (retried later): %s",
                message_id,
                exc,
            )
            row.claimed_at = None
            row.last_error = str(exc)[:500]
            if row.attempts >= MAX_ATTEMPTS:
                row.status = LoopMessageStatus.FAILED
            db.session.commit()
            failed += 1
            continue
        row.status = LoopMessageStatus.SENT
        row.sent_at = utcnow()
        row.recipient = customer.email
        db.session.commit()
        sent += 1
    return SendReport(sent, skipped, failed)


def message_counts(cycle_id: int) -> dict[str, int]:
    """How many of the cycle's messages are in each status (GROUP BY)."""
    rows = db.session.execute(
        select(CloseLoopMessage.status, func.count())
        .where(CloseLoopMessage.cycle_id == cycle_id)
        .group_by(CloseLoopMessage.status)
    )
    counts = {status.value: 0 for status in LoopMessageStatus}
    counts.update({status.value: int(n) for status, n in rows})
    return counts


# --- recovery ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    """``customers`` told (pending or sent); ``n`` of them answered again after the Act;
    ``recovered`` of those answered no longer low; ``rate`` = recovered ÷ n × 100."""

    customers: int
    n: int
    recovered: int

    @property
    def rate(self) -> float | None:
        return self.recovered / self.n * 100 if self.n else None


def recovery_rate(cycle: PdcaCycle) -> Recovery | None:
    """The cycle's recovery rate (None before its Act). One query: for each recorded
    customer the first response submitted after ``closed_at`` (ties by id), then
    ``recovered = COUNT(next response not low)``, ``n = COUNT(next response)``."""
    if cycle.closed_at is None:
        return None
    rule = current_rule()
    following = (
        select(SurveyResponse.id)
        .where(
            SurveyResponse.customer_id == CloseLoopMessage.customer_id,
            SurveyResponse.submitted_at > cycle.closed_at,
        )
        .order_by(SurveyResponse.submitted_at, SurveyResponse.id)
        .limit(1)
        .correlate(CloseLoopMessage)
        .scalar_subquery()
    )
    told = (
        select(CloseLoopMessage.customer_id, following.label("response_id"))
        .where(
            CloseLoopMessage.cycle_id == cycle.id,
            CloseLoopMessage.status.in_((LoopMessageStatus.PENDING, LoopMessageStatus.SENT)),
        )
        .subquery()
    )
    low_parts = []
    if rule.nps_max is not None:
        low_parts.append(and_(SurveyResponse.nps.is_not(None), SurveyResponse.nps <= rule.nps_max))
    if rule.csat_max is not None:
        for name in CSAT_COLUMNS:
            column = getattr(SurveyResponse, name)
            low_parts.append(and_(column.is_not(None), column <= rule.csat_max))
    low = or_(*low_parts) if low_parts else literal(False)
    row = db.session.execute(
        select(
            func.count(told.c.customer_id),
            func.count(SurveyResponse.id),
            func.coalesce(
                func.sum(case((and_(SurveyResponse.id.is_not(None), ~low), 1), else_=0)), 0
            ),
        ).select_from(told.outerjoin(SurveyResponse, SurveyResponse.id == told.c.response_id))
    ).one()
    return Recovery(int(row[0]), int(row[1]), int(row[2]))
