"""An audit event's changes as people read them: field labels, names instead of user ids,
KPI labels instead of KPI keys, numbers rounded, "—" for nothing."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from analysis.metrics import kpi_label
from survey_app.extensions import db
from survey_app.models import User

from .models import AuditEvent

#: Labels of the audited fields (cycles, actions, cases, root causes); others show their name.
FIELD_LABELS = {
    "title": _l("Title"),
    "description": _l("Description"),
    "owner_id": _l("Owner"),
    "assignee_id": _l("Assignee"),
    "stage": _l("Stage"),
    "status": _l("Status"),
    "scope": _l("Scope"),
    "kpi": _l("KPI"),
    "deadline": _l("Deadline"),
    "evidence": _l("Evidence"),
    "target_value": _l("Target"),
    "target_date": _l("Target date"),
    "baseline_start": _l("Baseline from"),
    "baseline_end": _l("Baseline to"),
    "check_scheduled_for": _l("Check scheduled for"),
    "cycle_id": _l("Cycle"),
}
NOTHING = "—"


def _shown(field: str, value: Any) -> str:
    if value is None or value == [] or value == "":
        return NOTHING
    if field.endswith(("owner_id", "assignee_id")) and isinstance(value, int):
        user = db.session.get(User, value)
        return (user.name or user.email) if user is not None else f"#{value}"
    if field == "cycle_id" and isinstance(value, int):
        return f"#{value}"
    if field == "kpi" and isinstance(value, str):
        return kpi_label(value)
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, list | tuple):
        return " · ".join(_shown(field, item) for item in value)
    return str(value)


def audit_changes(event: AuditEvent) -> list[tuple[str, str, str]]:
    """(field label, before, after) for each change of ``event``, in the order recorded."""
    return [
        (str(FIELD_LABELS.get(field, field)), _shown(field, pair[0]), _shown(field, pair[1]))
        for field, pair in (event.changes or {}).items()
    ]
