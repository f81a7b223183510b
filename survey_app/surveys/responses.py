"""Recording a customer's answers: exactly one response per invitation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

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

MAX_COMMENT_LENGTH = 2000


class AlreadyAnswered(Exception):
    """The invitation has a response already; nothing was written."""


def submit_response(
    invitation: Invitation,
    answers: Mapping[str, int | str | None],
    language: str,
    submitted_at: datetime | None = None,
) -> SurveyResponse:
    """Store the answers to ``invitation``'s questions and mark it answered; commit.

    ``answers`` maps question keys to values already validated against each
    question's scale; a missing or None value is stored as a skip, never as a
    zero. Two concurrent submits for one invitation produce one response: the
    unique constraint on ``invitation_id`` refuses the second, which raises
    :class:`AlreadyAnswered` after rolling back.
    """
    if invitation.status is InvitationStatus.ANSWERED or invitation.response is not None:
        raise AlreadyAnswered
    version = invitation.template_version
    assert version is not None
    ticket = invitation.ticket
    customer = invitation.customer
    response = SurveyResponse(
        invitation=invitation,
        ticket_id=ticket.id,
        customer_id=customer.id,
        template_version_id=version.id,
        submitted_at=submitted_at or utcnow(),
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
    invitation.status = InvitationStatus.ANSWERED
    invitation.answered_at = response.submitted_at
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise AlreadyAnswered from None
    return response
