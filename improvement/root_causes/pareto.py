"""The Pareto of root causes: linked feedback weighted by severity, with cumulative shares.

One SQL query groups the linked cases per root cause and computes the running
total with a window function; the web page, the CLI and the Excel report all
read :func:`root_cause_pareto`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from survey_app.extensions import db
from survey_app.models import Channel, Ticket

from .models import CaseStatus, FeedbackCase, RootCause, RootCauseStatus

#: Weight of a case whose severity has not been assessed yet (the lowest severity).
UNASSESSED_WEIGHT = 1
#: The "vital few": the root causes that together reach this share of the weight.
VITAL_FEW_SHARE = 80.0


@dataclass(frozen=True)
class ParetoRow:
    root_cause_id: int
    title: str
    status: RootCauseStatus
    #: Linked feedback items (cases), dismissed ones excluded.
    feedback: int
    #: Sum of the linked cases' severities (urgency × reach, 1-9; unassessed = 1).
    weight: int
    #: This root cause's share of all the weight, percent.
    share: float
    #: Running share, percent, in the Pareto order.
    cumulative: float
    #: True for the root causes needed to reach ``VITAL_FEW_SHARE`` percent.
    vital: bool


def root_cause_pareto(
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    teams: Sequence[str] = (),
    channels: Sequence[Channel] = (),
    problem_types: Sequence[str] = (),
) -> list[ParetoRow]:
    """Root causes by severity-weighted feedback, heaviest first, with cumulative percent.

    Counts the cases linked to each root cause that is not rejected, leaving
    out dismissed cases; ``since`` / ``until`` (UTC, ``until`` exclusive)
    restrict the cases by when they opened, ``teams`` and ``channels`` by their
    ticket's team and channel, ``problem_types`` by the case's problem type
    (each empty = any; shares are of what the filters keep). A case weighs its
    severity (urgency × reach), or ``UNASSESSED_WEIGHT`` before it is assessed.
    Ties go to more feedback, then the older root cause. Empty when nothing is
    linked.
    """
    weight = func.sum(func.coalesce(FeedbackCase.severity, UNASSESSED_WEIGHT))
    feedback = func.count(FeedbackCase.id)
    order = (weight.desc(), feedback.desc(), RootCause.id)
    query = (
        select(
            RootCause.id,
            RootCause.title,
            RootCause.status,
            feedback.label("feedback"),
            weight.label("weight"),
            func.sum(weight).over(order_by=order).label("running"),
            func.sum(weight).over().label("total"),
        )
        .join(FeedbackCase, FeedbackCase.root_cause_id == RootCause.id)
        .where(
            RootCause.status != RootCauseStatus.REJECTED,
            FeedbackCase.status != CaseStatus.DISMISSED,
        )
        .group_by(RootCause.id, RootCause.title, RootCause.status)
        .order_by(*order)
    )
    if since is not None:
        query = query.where(FeedbackCase.opened_at >= since)
    if until is not None:
        query = query.where(FeedbackCase.opened_at < until)
    if teams or channels:
        query = query.join(Ticket, Ticket.id == FeedbackCase.ticket_id)
        if teams:
            query = query.where(Ticket.team.in_(teams))
        if channels:
            query = query.where(Ticket.channel.in_(channels))
    if problem_types:
        query = query.where(FeedbackCase.problem_type.in_(problem_types))
    rows = []
    for rc_id, title, status, count, *sums in db.session.execute(query):
        # PostgreSQL sums integers as NUMERIC (Decimal); the weights are whole numbers.
        total_weight, running, total = (int(value) for value in sums)
        before = 100.0 * (running - total_weight) / total
        rows.append(
            ParetoRow(
                root_cause_id=rc_id,
                title=title,
                status=status,
                feedback=count,
                weight=total_weight,
                share=100.0 * total_weight / total,
                cumulative=100.0 * running / total,
                vital=before < VITAL_FEW_SHARE,
            )
        )
    return rows
