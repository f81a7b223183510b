"""Forms of the PDCA pages. Every POST form carries a CSRF token (Flask-WTF)."""

from __future__ import annotations

import json
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    FloatField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from analysis.metrics import ALL_KPIS, DIMENSIONS
from analysis.targets.labels import KPI_LABELS

from .common import MAX_TEXT, MAX_TITLE
from .labels import ENUM_LABELS, choices
from .models import ActDecision, ActionStatus, OpenActions, Stage


def parse_scope_text(text: str | None) -> dict[str, Any]:
    """Read a scope typed as ``dimension=value`` pairs, one per line or separated by ``;``
    (a dimension given twice accepts either value), or as a JSON object. Empty: everything."""
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            raise ValidationError(_l("Not valid JSON.")) from None
        if not isinstance(value, dict):
            raise ValidationError(_l("Give an object of dimension → values."))
        return value
    filters: dict[str, list[str]] = {}
    for part in text.replace(";", "\n").splitlines():
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not value.strip():
            raise ValidationError(_l("Write each filter as dimension=value."))
        name = name.strip()
        if name not in DIMENSIONS:
            raise ValidationError(
                _l(
                    "Unknown dimension %(name)s; use one of %(names)s.",
                    name=name,
                    names=", ".join(DIMENSIONS),
                )
            )
        filters.setdefault(name, []).append(value.strip())
    return filters


def scope_text(filters: dict[str, Any] | None) -> str:
    """The stored filters as the form shows them (one ``dimension=value`` a line)."""
    lines = []
    for name, value in (filters or {}).items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, bool):
                v = "new" if v else "returning"
            lines.append(f"{name}={v}")
    return "\n".join(lines)


class ScopeField(TextAreaField):
    """A textarea holding filters; ``.filters`` is the parsed dict after validation."""

    filters: dict[str, Any]

    def pre_validate(self, form: Any) -> None:
        self.filters = parse_scope_text(self.data)


class CycleForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=MAX_TITLE)])
    description = TextAreaField(_l("Description"), validators=[Length(max=MAX_TEXT)])
    #: Offers managers and admins; another id is refused by the plan check with its reason.
    owner_id = SelectField(
        _l("Owner"), coerce=int, validators=[InputRequired()], validate_choice=False
    )
    kpi = SelectField(
        _l("KPI"),
        choices=[SelectChoice(k, KPI_LABELS[k]) for k in ALL_KPIS],
        validators=[DataRequired()],
    )
    scope = ScopeField(_l("Scope (dimension=value, one a line; empty = everything)"))
    baseline_start = DateField(_l("Baseline from"), validators=[InputRequired()])
    baseline_end = DateField(_l("Baseline to"), validators=[InputRequired()])
    target_value = FloatField(_l("Target value"), validators=[InputRequired()])
    target_date = DateField(_l("Target date"), validators=[InputRequired()])
    root_cause_ids = SelectMultipleField(_l("Root causes"), coerce=int, validators=[Optional()])
    pilot_scope = ScopeField(_l("Pilot scope (optional)"))
    control_scope = ScopeField(_l("Control scope (optional)"))


class ActionForm(FlaskForm):
    title = StringField(_l("Action"), validators=[DataRequired(), Length(max=MAX_TITLE)])
    owner_id = SelectField(_l("Owner"), coerce=int, validators=[InputRequired()])
    deadline = DateField(_l("Deadline"), validators=[InputRequired()])


class ActionUpdateForm(FlaskForm):
    status = SelectField(_l("Status"), choices=choices(ActionStatus), validators=[DataRequired()])
    evidence = TextAreaField(_l("Evidence"), validators=[Length(max=MAX_TEXT)])


class StageForm(FlaskForm):
    to = SelectField(
        _l("Move to"),
        choices=[
            SelectChoice(s.value, ENUM_LABELS[s]) for s in (Stage.DO, Stage.CHECK, Stage.ACT)
        ],
        validators=[DataRequired()],
    )
    note = TextAreaField(_l("Note"), validators=[Length(max=MAX_TEXT)])
    #: Enter Check although the window is short of data (the note says why).
    anyway = BooleanField(_l("Check now anyway"))


class ScheduleCheckForm(FlaskForm):
    on = DateField(_l("Check on"), validators=[Optional()])
    cancel = SubmitField(_l("Cancel the scheduled Check"))


class ActForm(FlaskForm):
    decision = SelectField(
        _l("Decision"), choices=choices(ActDecision), validators=[DataRequired()]
    )
    note = TextAreaField(_l("What was decided"), validators=[Length(max=MAX_TEXT)])
    open_next = BooleanField(_l("Open the next cycle"))
    #: Asked (and required by the operation) while actions are still pending.
    open_actions = RadioField(
        _l("What happens to the open actions?"),
        choices=choices(OpenActions),
        validators=[Optional()],
    )


class ButtonForm(FlaskForm):
    """A button that posts nothing but its CSRF token."""
