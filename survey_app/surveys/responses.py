"""Recording a customer's answers: exactly one response per invitation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from flask import current_app
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..types import utcnow
from .models import (
    METRIC_COLUMNS,
    Answer,
    Invitation,
    InvitationStatus,
    QuestionKind,
    SurveyResponse,
)
from .signals import response_submitted

MAX_COMMENT_LENGTH = 2000


class AlreadyAnswered(Exception):
    """The invitation has a response already; nothing was written."""


class SurveyClosed(Exception):
    """The invitation can no longer be answered (cancelled or expired); nothing was written."""


def submit_response(
    invitation: Invitation,
    answers: Mapping[str, int | str | None],
    language: str,
    submitted_at: datetime | None = None,
) -> SurveyResponse:
    """Store the answers to ``invitation``'s questions and mark it answered; commit.

    ``answers`` maps question keys to values already validated against each
    question's scale; a missing or None value (or blank text) is stored as a
    skip, never as a zero. The ticket's team, agent, channel, priority ... are
    copied as they are now.

    Refuses with :class:`AlreadyAnswered` when the invitation has a response
    and with :class:`SurveyClosed` when it is cancelled or expired; either way
    nothing is written. Two concurrent submits produce one response: each
    first claims the invitation with a conditional UPDATE (sent → answered),
    which the database serialises; and should anything get past the claim,
    the unique constraint on ``survey_response.invitation_id`` refuses the
    second row. Sends :data:`.signals.response_submitted` once committed.
    """
    now = submitted_at or utcnow()
    invitation_id = invitation.id
    # A fresh transaction whose first statement is the write: SQLite then takes
    # its write lock at once instead of failing on an older read snapshot.
    db.session.commit()
    claimed = db.session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation_id,
            Invitation.status == InvitationStatus.SENT,
            Invitation.expires_at.is_(None) | (Invitation.expires_at > now),
        )
        .values(status=InvitationStatus.ANSWERED, answered_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        db.session.refresh(invitation)
        if invitation.status is InvitationStatus.ANSWERED:
            raise AlreadyAnswered
        raise SurveyClosed
    db.session.refresh(invitation)
    try:
        response = _record(invitation, answers, language, now)
        # Read before the commit expires it: reading it after would reload the row in a
        # new transaction, which in a POST holds SQLite's write lock until the request ends.
        db.session.flush()
        response_id = response.id
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise AlreadyAnswered from None
    response_submitted.send(current_app._get_current_object(), response_id=response_id)
    return response


def _record(
    invitation: Invitation,
    answers: Mapping[str, int | str | None],
    language: str,
    now: datetime,
) -> SurveyResponse:
    """Add the response and its answers to the session (flushing as questions load)."""
    version = invitation.template_version
    assert version is not None
    ticket = invitation.ticket
    customer = invitation.customer
    response = SurveyResponse(
        # By id: through the relationship, a second response would detach the first.
        invitation_id=invitation.id,
        ticket_id=ticket.id,
        customer_id=customer.id,
        template_version_id=version.id,
        submitted_at=now,
        language=language,
        team=ticket.team,
        agent=ticket.agent,
        channel=ticket.channel,
        priority=ticket.priority,
        category=ticket.category,
        product_line=ticket.product_line,
        region=ticket.region,
        customer_tier=customer.tier,
        customer_is_new=customer.is_new,
    )
    # In the session at once: loading the questions below autoflushes.
    db.session.add(response)
    for question in version.questions:
        value = answers.get(question.key)
        if isinstance(value, str) and not value.strip():
            value = None
        answer = Answer(question=question, question_key=question.key, skipped=value is None)
        if question.kind is QuestionKind.TEXT:
            answer.text = value if isinstance(value, str) else None
        elif value is not None:
            answer.value = int(value)
        response.answers.append(answer)
        if question.key in METRIC_COLUMNS:
            setattr(
                response, question.key, answer.text if answer.text is not None else answer.value
            )
    return response
