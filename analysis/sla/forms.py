"""Forms of the SLA policy page."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, NumberRange

from survey_app.labels import LABELS
from survey_app.models import Priority, Tier

from .models import SlaClock
from .services import MAX_TARGET_MINUTES

CLOCK_LABELS = {
    SlaClock.ALWAYS: _l("24×7 (every minute counts)"),
    SlaClock.WORKING_HOURS: _l("working hours on working days"),
}


class SlaRuleForm(FlaskForm):
    """Add or change the rule of one priority, for every tier or one tier."""

    priority = SelectField(
        _l("Priority"),
        choices=[SelectChoice(p.value, LABELS[p]) for p in Priority],
        validators=[InputRequired()],
    )
    customer_tier = SelectField(
        _l("Customer tier"),
        choices=[
            SelectChoice("", _l("every tier")),
            *(SelectChoice(t.value, LABELS[t]) for t in Tier),
        ],
        default="",
    )
    first_response_minutes = IntegerField(
        _l("First response within (minutes)"),
        validators=[InputRequired(), NumberRange(1, MAX_TARGET_MINUTES)],
    )
    resolution_minutes = IntegerField(
        _l("Resolution within (minutes)"),
        validators=[InputRequired(), NumberRange(1, MAX_TARGET_MINUTES)],
    )
    clock = SelectField(
        _l("Clock"), choices=[SelectChoice(c.value, label) for c, label in CLOCK_LABELS.items()]
    )
    submit = SubmitField(_l("Save rule"))


class DeleteRuleForm(FlaskForm):
    """Only the CSRF token: deleting a tier override."""

    submit = SubmitField(_l("Delete"))
