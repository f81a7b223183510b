"""Translated names of the PDCA values people see (stages, statuses, decisions, verdicts)."""

from __future__ import annotations

import enum

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l
from wtforms.fields.choices import SelectChoice

from survey_app.labels import LABELS

from .models import (
    ActDecision,
    ActionStatus,
    Comparison,
    OpenActions,
    ReminderKind,
    Stage,
    Verdict,
)

ENUM_LABELS: dict[enum.Enum, LazyString] = {
    Stage.PLAN: _l("Plan"),
    Stage.DO: _l("Do"),
    Stage.CHECK: _l("Check"),
    Stage.ACT: _l("Act"),
    Stage.CLOSED: _l("closed"),
    ActDecision.STANDARDISE: _l("standardise"),
    ActDecision.ADJUST: _l("adjust"),
    ActDecision.ABANDON: _l("abandon"),
    OpenActions.CARRY: _l("carry into the next cycle"),
    OpenActions.CANCEL: _l("cancel"),
    OpenActions.KEEP: _l("keep open, to be finished later"),
    ActionStatus.OPEN: _l("open"),
    ActionStatus.IN_PROGRESS: _l("in progress"),
    ActionStatus.BLOCKED: _l("blocked"),
    ActionStatus.DONE: _l("done"),
    ActionStatus.CANCELLED: _l("cancelled"),
    Verdict.MET: _l("target met"),
    Verdict.NOT_MET: _l("target not met"),
    Verdict.NOT_ENOUGH_DATA: _l("not enough data"),
    Comparison.BEFORE_AFTER: _l("after vs before"),
    Comparison.PILOT_CONTROL: _l("pilot vs control"),
    ReminderKind.DUE_SOON: _l("due soon"),
    ReminderKind.OVERDUE: _l("overdue"),
}


def choices(enum_cls: type[enum.Enum]) -> list[SelectChoice]:
    return [SelectChoice(m.value, ENUM_LABELS[m]) for m in enum_cls]


def init_app() -> None:
    """Teach the shell's ``label`` filter these enums (names it has already are kept)."""
    for member, name in ENUM_LABELS.items():
        LABELS.setdefault(member, name)
