"""Recording a customer's answers: exactly one response per invitation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, Update, bindparam, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import BindParameter

from .. import running_app
from ..database import changed_rows, write_transaction
from ..extensions import db
from ..types import utcnow
from .links import SurveyLink
from .models import (
    METRIC_COLUMNS,
    Answer,
    Invitation,
    InvitationStatus,
    QuestionKind,
    SurveyResponse,
)
from .published import VersionData, version_data
from .signals import response_submitted

MAX_COMMENT_LENGTH = 2000


class AlreadyAnswered(Exception):
    """The invitation has a response already; nothing was written."""


class SurveyClosed(Exception):
    """The invitation can no longer be answered (cancelled or expired); nothing was written."""


def submit_response(
    invitation: Invitation | SurveyLink,
    answers: Mapping[str, int | str | None],
    language: str,
    submitted_at: datetime | None = None,
    version: VersionData | None = None,
) -> int:
    """Store the answers to ``invitation``'s questions and mark it answered; commit.

    Returns the new response's id. ``answers`` maps question keys to values
    already validated against each question's scale; a missing or None value (or
    blank text) is stored as a skip, never as a zero. ``invitation`` is the ORM
    object or the survey page's :class:`~.links.SurveyLink`. The ticket's team, agent,
    channel, priority ... are copied as they are now. ``version`` is the
    invitation's template version when the caller has it already.

    Refuses with :class:`AlreadyAnswered` when the invitation has a response
    and with :class:`SurveyClosed` when it is cancelled or expired; either way
    nothing is written. Two concurrent submits produce one response: each
    first claims the invitation with a conditional UPDATE (sent → answered),
    which the database serialises; and should anything get past the claim,
    the unique constraint on ``survey_response.invitation_id`` refuses the
    second row. Sends :data:`.signals.response_submitted` once committed.

    Three statements in one transaction: the claim, the response row, and all
    its answers in one executemany (Core inserts, no ORM unit of work).
    """
    now = submitted_at or utcnow()
    invitation_id = invitation.id
    assert invitation.template_version_id is not None, "a sent invitation has a version"
    if version is None:
        version = version_data(invitation.template_version_id)
    # Read while loaded: the commit below expires the invitation, its ticket and customer.
    response, answer_rows = _rows(invitation, version, answers, language, now)
    # A fresh transaction that takes SQLite's write lock as it begins, instead of
    # failing on an older read snapshot; held for the three statements only.
    write_transaction()
    claimed = db.session.execute(_claim_statement(), {"invitation_id": invitation_id, "now": now})
    if changed_rows(claimed) != 1:
        db.session.rollback()
        status = db.session.scalar(select(Invitation.status).where(Invitation.id == invitation_id))
        if isinstance(invitation, Invitation):
            db.session.refresh(invitation)
        if status is InvitationStatus.ANSWERED:
            raise AlreadyAnswered
        raise SurveyClosed
    try:
        # Values as parameters, not .values(): the statement is then built once and cached.
        inserted = db.session.execute(insert(cast(Table, SurveyResponse.__table__)), response)
        key = cast(CursorResult[Any], inserted).inserted_primary_key
        assert key is not None  # a single-row INSERT reports its key
        response_id = key[0]
        if answer_rows:
            db.session.execute(
                insert(cast(Table, Answer.__table__)),
                [dict(row, response_id=response_id) for row in answer_rows],
            )
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise AlreadyAnswered from None
    if isinstance(invitation, Invitation):
        # What the claim wrote, without reading the row again.
        set_committed_value(invitation, "status", InvitationStatus.ANSWERED)
        set_committed_value(invitation, "answered_at", now)
    response_submitted.send(running_app(), response_id=response_id)
    return response_id


@cache
def _claim_statement() -> Update:
    """Sent → answered, if still sent and not expired at ``:now`` (built once, reused)."""
    now: BindParameter[Any] = bindparam("now")
    return (
        update(Invitation)
        .where(
            Invitation.id == bindparam("invitation_id"),
            Invitation.status == InvitationStatus.SENT,
            Invitation.expires_at.is_(None) | (Invitation.expires_at > now),
        )
        .values(status=InvitationStatus.ANSWERED, answered_at=now)
        .execution_options(synchronize_session=False)
    )


def _rows(
    invitation: Invitation | SurveyLink,
    version: VersionData,
    answers: Mapping[str, int | str | None],
    language: str,
    now: datetime,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``survey_response`` row and the ``answer`` rows (without their response id)."""
    ticket = invitation.ticket
    customer = invitation.customer
    response: dict[str, Any] = {
        "invitation_id": invitation.id,
        "ticket_id": ticket.id,
        "customer_id": customer.id,
        "template_version_id": version.id,
        "submitted_at": now,
        "language": language,
        "team": ticket.team,
        "agent": ticket.agent,
        "channel": ticket.channel,
        "priority": ticket.priority,
        "category": ticket.category,
        "product_line": ticket.product_line,
        "region": ticket.region,
        "customer_tier": customer.tier,
        "customer_is_new": customer.is_new,
    }
    answer_rows = []
    for question in version.questions:
        value = answers.get(question.key)
        if isinstance(value, str) and not value.strip():
            value = None
        text = number = None
        if question.kind is QuestionKind.TEXT:
            text = value if isinstance(value, str) else None
        elif value is not None:
            number = int(value)
        answer_rows.append(
            {
                "question_id": question.id,
                "question_key": question.key,
                "value": number,
                "text": text,
                "skipped": value is None,
            }
        )
        if question.key in METRIC_COLUMNS:
            response[question.key] = text if text is not None else number
    return response, answer_rows
