"""5 Why chains of a root cause: add, edit, move and delete a why, each audited as the
whole chain before and after. Flush only; the caller commits (see :mod:`.common`).
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from improvement.audit.services import record_event
from survey_app.extensions import db
from survey_app.models import User

from .common import MAX_STATEMENT, CaseError, fishbone_categories
from .models import RootCause, WhyStep


def _check_why(statement: str, category: str) -> tuple[str, str]:
    statement = (statement or "").strip()
    if not statement:
        raise CaseError(_("A why needs a statement."))
    if len(statement) > MAX_STATEMENT:
        raise CaseError(_("The statement is longer than %(n)s characters.", n=MAX_STATEMENT))
    if category not in fishbone_categories():
        raise CaseError(_("Unknown fishbone category."))
    return statement, category


def why_chain(root_cause_id: int) -> list[str]:
    """The 5 Why chain as the audit trail records it: ``"1. [category] statement"``."""
    rows = db.session.execute(
        select(WhyStep.position, WhyStep.category, WhyStep.statement)
        .where(WhyStep.root_cause_id == root_cause_id)
        .order_by(WhyStep.position)
    )
    return [f"{position}. [{category}] {statement}" for position, category, statement in rows]


def _record_chain_change(
    user: User | None, root_cause_id: int, action: str, before: list[str]
) -> None:
    """One audit event on the root cause: its whole chain before and after (flushed)."""
    db.session.flush()
    after = why_chain(root_cause_id)
    record_event(user, "root_cause", root_cause_id, action, {"whys": before}, {"whys": after})


def add_why(root_cause: RootCause, statement: str, category: str, user: User | None) -> WhyStep:
    """Append a why to the root cause's chain (next position); flush and return it."""
    statement, category = _check_why(statement, category)
    before = why_chain(root_cause.id)
    last = db.session.scalar(
        select(db.func.max(WhyStep.position)).where(WhyStep.root_cause_id == root_cause.id)
    )
    why = WhyStep(
        root_cause_id=root_cause.id,
        position=(last or 0) + 1,
        statement=statement,
        category=category,
        created_by_id=user.id if user is not None else None,
    )
    db.session.add(why)
    _record_chain_change(user, root_cause.id, "why_add", before)
    db.session.expire(root_cause, ["whys"])
    return why


def update_why(why: WhyStep, statement: str, category: str, user: User | None = None) -> WhyStep:
    """Change a why's statement and category; flush."""
    statement, category = _check_why(statement, category)
    before = why_chain(why.root_cause_id)
    why.statement, why.category = statement, category
    _record_chain_change(user, why.root_cause_id, "why_edit", before)
    return why


def move_why(why: WhyStep, direction: str, user: User | None = None) -> WhyStep:
    """Swap a why with its neighbour ("up" or "down"); at either end nothing moves."""
    if direction not in ("up", "down"):
        raise CaseError(_("Move up or down."))
    before = why_chain(why.root_cause_id)
    neighbour_position = why.position - 1 if direction == "up" else why.position + 1
    neighbour = db.session.scalar(
        select(WhyStep).where(
            WhyStep.root_cause_id == why.root_cause_id, WhyStep.position == neighbour_position
        )
    )
    if neighbour is None:
        return why
    # Through a free position, so the unique (root cause, position) holds at every step.
    old = why.position
    why.position = 0
    db.session.flush()
    neighbour.position = old
    db.session.flush()
    why.position = neighbour_position
    _record_chain_change(user, why.root_cause_id, "why_move", before)
    db.session.expire(why.root_cause, ["whys"])
    return why


def delete_why(why: WhyStep, user: User | None = None) -> None:
    """Remove a why and close the gap in the chain's numbering; flush."""
    root_cause = why.root_cause
    position = why.position
    before = why_chain(root_cause.id)
    db.session.delete(why)
    db.session.flush()
    later = db.session.scalars(
        select(WhyStep)
        .where(WhyStep.root_cause_id == root_cause.id, WhyStep.position > position)
        .order_by(WhyStep.position)
    ).all()
    for step in later:  # one at a time, lowest first: each moves into a free slot
        step.position -= 1
        db.session.flush()
    _record_chain_change(user, root_cause.id, "why_delete", before)
    db.session.expire(root_cause, ["whys"])
