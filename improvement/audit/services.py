"""Writing and reading the audit trail.

Operations take a :func:`snapshot` of the fields they may change before
changing them and call :func:`record_event` after, which stores only the
fields whose value differs (``{field: [old, new]}``). The caller commits.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from survey_app.extensions import db
from survey_app.models import User
from survey_app.types import utcnow

from .models import AuditEvent

#: Entity types written to the trail.
ENTITY_TYPES = ("case", "root_cause", "cycle", "action")
PAGE_SIZE = 100


def _plain(value: Any) -> Any:
    """A JSON-ready form of a field's value."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def snapshot(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    """The JSON-ready values of ``fields`` of ``obj`` (a relationship list by its ids)."""
    values: dict[str, Any] = {}
    for name in fields:
        value = getattr(obj, name)
        if isinstance(value, list) and value and hasattr(value[0], "id"):
            value = sorted(v.id for v in value)
        values[name] = _plain(value)
    return values


def record_event(
    actor: User | None,
    entity_type: str,
    entity_id: int,
    action: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEvent | None:
    """Add an event with the fields that differ between ``before`` and ``after``; flush.

    Returns None (nothing written) for an update (both given) that changed nothing.
    """
    before, after = dict(before or {}), dict(after or {})
    if before and after:
        changes = {
            name: [before.get(name), after.get(name)]
            for name in sorted(set(before) | set(after))
            if before.get(name) != after.get(name)
        }
        if not changes:
            return None
    else:
        changes = {name: [None, value] for name, value in after.items()} or {
            name: [value, None] for name, value in before.items()
        }
    event = AuditEvent(
        actor_id=actor.id if actor is not None and getattr(actor, "id", None) else None,
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        changes=_plain(changes),
        at=utcnow(),
    )
    db.session.add(event)
    db.session.flush()
    return event


def events_for(entity_type: str, entity_id: int | Iterable[int]) -> list[AuditEvent]:
    """The events of one entity (or of several of one type), newest first."""
    ids = [entity_id] if isinstance(entity_id, int) else list(entity_id)
    if not ids:
        return []
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id.in_(ids))
            .options(selectinload(AuditEvent.actor))
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        )
    )


@dataclass(frozen=True)
class AuditFilter:
    entity_type: str | None = None
    entity_id: int | None = None
    actor_id: int | None = None
    start: date | None = None
    end: date | None = None


def event_query(filters: AuditFilter) -> Select[AuditEvent]:
    """Events matching ``filters`` (days are UTC days, both ends included), newest first."""
    query = select(AuditEvent).options(selectinload(AuditEvent.actor))
    if filters.entity_type:
        query = query.where(AuditEvent.entity_type == filters.entity_type)
    if filters.entity_id is not None:
        query = query.where(AuditEvent.entity_id == filters.entity_id)
    if filters.actor_id is not None:
        query = query.where(AuditEvent.actor_id == filters.actor_id)
    if filters.start is not None:
        query = query.where(AuditEvent.at >= datetime.combine(filters.start, time()))
    if filters.end is not None:
        query = query.where(
            AuditEvent.at < datetime.combine(filters.end + timedelta(days=1), time())
        )
    return query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
