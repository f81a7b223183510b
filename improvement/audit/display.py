"""An audit event as people read it: what was done to what, each change with the field's
label, names instead of user ids, KPI labels instead of KPI keys, enum values by their
translated names, times in the display time zone, numbers rounded, "—" for nothing."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l

from analysis.metrics import kpi_label
from analysis.metrics.catalog import describe_scope
from analysis.text.problems import ProblemType
from improvement.pdca.models import ActDecision, ActionStatus, Stage
from improvement.root_causes.labels import (
    REACH_LABELS,
    URGENCY_LABELS,
    problem_label,
    severity_label,
    trigger_label,
)
from improvement.root_causes.models import (
    CallBackOutcome,
    CaseOrigin,
    CaseStatus,
    ProcessStep,
    ResponsibleParty,
    RootCauseStatus,
)
from survey_app.dates import local_datetime_text
from survey_app.extensions import db
from survey_app.labels import label
from survey_app.models import Channel, User

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
    "pilot_scope": _l("Pilot scope"),
    "control_scope": _l("Control scope"),
    "kpi": _l("KPI"),
    "deadline": _l("Deadline"),
    "evidence": _l("Evidence"),
    "target_value": _l("Target"),
    "target_date": _l("Target date"),
    "baseline_start": _l("Baseline from"),
    "baseline_end": _l("Baseline to"),
    "baseline_value": _l("Baseline"),
    "root_causes": _l("Root causes"),
    "root_cause_id": _l("Root cause"),
    "approved_by_id": _l("Approved by"),
    "act_decision": _l("Act decision"),
    "act_note": _l("Act note"),
    "origin": _l("Origin"),
    "trigger": _l("Why it opened"),
    "response_id": _l("Survey response"),
    "ticket_id": _l("Ticket"),
    "problem_type": _l("Problem type"),
    "urgency": _l("Urgency"),
    "reach": _l("Reach"),
    "severity": _l("Severity"),
    "touchpoint": _l("Touchpoint"),
    "process_step": _l("Process step"),
    "responsible_party": _l("Responsible party"),
    "called_back_at": _l("Called back"),
    "call_back": _l("Call-back"),
    "themes": _l("Themes"),
    "whys": _l("5 Whys"),
    "check_scheduled_for": _l("Check scheduled for"),
    "cycle_id": _l("Cycle"),
}
#: What was done, by the action names the operations record.
ACTION_LABELS = {
    "create": _l("created"),
    "update": _l("changed"),
    "update_plan": _l("plan changed"),
    "approve": _l("plan approved"),
    "advance": _l("moved to the next stage"),
    "act": _l("Act decision recorded"),
    "open": _l("opened"),
    "classify": _l("classified"),
    "link": _l("linked to a root cause"),
    "call_back": _l("call-back logged"),
    "why_add": _l("why added"),
    "why_edit": _l("why edited"),
    "why_move": _l("why moved"),
    "why_delete": _l("why deleted"),
    "check_anyway": _l("Check entered before the minimum sample"),
    "schedule_check": _l("Check scheduled"),
    "unschedule_check": _l("scheduled Check taken off"),
    "scheduled_check": _l("scheduled Check entered"),
    "carry": _l("carried into the next cycle"),
    "cancel": _l("cancelled"),
}
#: The kinds of things the trail records (``AuditEvent.entity_type``).
ENTITY_LABELS = {
    "case": _l("feedback case"),
    "root_cause": _l("root cause"),
    "cycle": _l("PDCA cycle"),
    "action": _l("action item"),
}
#: The enum of each field stored by its value, by entity type ("*": any entity).
_ENUM_FIELDS: dict[tuple[str, str], type[enum.Enum]] = {
    ("case", "status"): CaseStatus,
    ("root_cause", "status"): RootCauseStatus,
    ("action", "status"): ActionStatus,
    ("*", "stage"): Stage,
    ("*", "act_decision"): ActDecision,
    ("*", "origin"): CaseOrigin,
    ("*", "touchpoint"): Channel,
    ("*", "process_step"): ProcessStep,
    ("*", "responsible_party"): ResponsibleParty,
}
NOTHING = "—"


def _enum_label(enum_cls: type[enum.Enum], value: Any) -> str:
    try:
        return label(enum_cls(value))
    except ValueError:
        return str(value)


def _time_label(value: str) -> str:
    try:
        return local_datetime_text(datetime.fromisoformat(value))
    except ValueError:
        return value


def _call_back_label(value: str) -> str:
    """``"<outcome> <ISO time>"`` (as :func:`log_call_back` records it) as people read it."""
    outcome, _space, when = value.partition(" ")
    return f"{_enum_label(CallBackOutcome, outcome)} · {_time_label(when)}"


def _shown(entity: str, field: str, value: Any) -> str:
    if value is None or value == [] or value == "":
        return NOTHING
    enum_cls = _ENUM_FIELDS.get((entity, field)) or _ENUM_FIELDS.get(("*", field))
    if enum_cls is not None and isinstance(value, str):
        return _enum_label(enum_cls, value)
    if field.endswith(("owner_id", "assignee_id", "approved_by_id")) and isinstance(value, int):
        user = db.session.get(User, value)
        return (user.name or user.email) if user is not None else f"#{value}"
    if field == "kpi" and isinstance(value, str):
        return kpi_label(value)
    if field.endswith("scope") and isinstance(value, dict):
        return describe_scope(value)
    if field == "problem_type" and isinstance(value, str):
        return problem_label(value) if value in set(ProblemType) else value
    if field == "severity" and isinstance(value, int):
        return severity_label(value)
    if field in ("urgency", "reach") and isinstance(value, int):
        return str((URGENCY_LABELS if field == "urgency" else REACH_LABELS).get(value, value))
    if field == "trigger" and isinstance(value, str):
        return trigger_label(value)
    if field == "called_back_at" and isinstance(value, str):
        return _time_label(value)
    if field == "call_back" and isinstance(value, str):
        return _call_back_label(value)
    if field.endswith("_id") and isinstance(value, int):
        return f"#{value}"
    if field == "root_causes" and isinstance(value, list):
        return ", ".join(f"#{item}" for item in value)
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, list | tuple):
        return " · ".join(_shown(entity, field, item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_shown(entity, key, item)}" for key, item in value.items())
    return str(value)


def audit_changes(event: AuditEvent) -> list[tuple[str, str, str]]:
    """(field label, before, after) for each change of ``event``, in the order recorded;
    a field that reads the same before and after (e.g. empty when a cycle is created) is
    left out."""
    rows = []
    for field, pair in (event.changes or {}).items():
        before = _shown(event.entity_type, field, pair[0])
        after = _shown(event.entity_type, field, pair[1])
        if before != after:
            rows.append((str(FIELD_LABELS.get(field, field)), before, after))
    return rows


def audit_action(event: AuditEvent) -> str:
    """What ``event`` did, in the reader's language (an unknown action by its name)."""
    return str(ACTION_LABELS.get(event.action, event.action))


def audit_entity(entity_type: str) -> str:
    """The name of an entity type of the trail (an unknown one as it is)."""
    return str(ENTITY_LABELS.get(entity_type, entity_type))
