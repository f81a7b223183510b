"""Forms of the root-cause pages. Every POST form carries a CSRF token (Flask-WTF)."""

from __future__ import annotations

from enum import Enum

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    HiddenField,
    SearchField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from analysis.text.problems import ProblemType
from survey_app.labels import LABELS
from survey_app.models import Channel
from survey_app.routing import within_supported_days
from survey_app.surveys.models import SentimentLabel

from .causes import linkable_root_causes
from .common import MAX_DESCRIPTION, MAX_NOTE, MAX_STATEMENT, MAX_TITLE, fishbone_categories
from .labels import ENUM_LABELS, REACH_LABELS, URGENCY_LABELS, category_label
from .models import (
    CallBackOutcome,
    CaseStatus,
    ProcessStep,
    ResponsibleParty,
    RootCauseStatus,
)
from .queue import OPEN_FILTER


def _enum_choices(enum_cls: type[Enum], blank: object | None = None) -> list[SelectChoice]:
    # Lazy names, so each request reads them in its own language.
    names = ENUM_LABELS if enum_cls in ENUM_LABELS.classes() else LABELS
    choices = [SelectChoice(m.value, names[m]) for m in enum_cls]
    return ([SelectChoice("", blank)] if blank is not None else []) + choices


def _scale_choices(labels: dict[int, object]) -> list[SelectChoice]:
    return [SelectChoice("", _l("not assessed"))] + [
        SelectChoice(str(value), text) for value, text in labels.items()
    ]


def _int_or_none(value: object) -> int | None:
    return int(value) if value not in (None, "") else None  # type: ignore[call-overload]


class CaseFilterForm(FlaskForm):
    """The GET filter bar above the triage queue (no state change, so no CSRF token)."""

    class Meta:
        csrf = False

    q = SearchField(_l("Search"), validators=[Optional(), Length(max=200)])
    status = SelectField(
        _l("Status"),
        choices=[
            SelectChoice(OPEN_FILTER, _l("open (new or in progress)")),
            SelectChoice("", _l("Any")),
        ]
        + _enum_choices(CaseStatus),
        default=OPEN_FILTER,
    )
    problem_type = SelectField(
        _l("Problem type"), choices=_enum_choices(ProblemType, _l("Any")), default=""
    )
    touchpoint = SelectField(
        _l("Touchpoint"), choices=_enum_choices(Channel, _l("Any")), default=""
    )
    sentiment = SelectField(
        _l("Sentiment"), choices=_enum_choices(SentimentLabel, _l("Any")), default=""
    )
    team = StringField(_l("Team"), validators=[Optional(), Length(max=100)])
    linked = SelectField(
        _l("Root cause"),
        choices=[
            SelectChoice("", _l("Any")),
            SelectChoice("yes", _l("linked")),
            SelectChoice("no", _l("not linked yet")),
        ],
        default="",
    )
    overdue = BooleanField(_l("Call-back overdue only"))


class ParetoFilterForm(FlaskForm):
    """The GET filter bar above the Pareto (local days in the metrics time zone)."""

    class Meta:
        csrf = False

    since = DateField(_l("Opened from"), validators=[Optional()])
    until = DateField(_l("Opened until"), validators=[Optional()])
    team = StringField(_l("Team"), validators=[Optional(), Length(max=100)])
    channel = SelectField(_l("Channel"), choices=_enum_choices(Channel, _l("Any")), default="")
    problem_type = SelectField(
        _l("Problem type"), choices=_enum_choices(ProblemType, _l("Any")), default=""
    )

    def validate_since(self, field: DateField) -> None:
        if field.data and not within_supported_days(field.data):
            raise ValidationError(_l("Not a date this report can cover."))

    def validate_until(self, field: DateField) -> None:
        if field.data and not within_supported_days(field.data):
            raise ValidationError(_l("Not a date this report can cover."))
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError(_l("The end date is before the start date."))


class CaseClassifyForm(FlaskForm):
    problem_type = SelectField(
        _l("Problem type"), choices=_enum_choices(ProblemType, _l("not classified")), default=""
    )
    urgency = SelectField(
        _l("Urgency"), choices=_scale_choices(URGENCY_LABELS), coerce=_int_or_none
    )
    reach = SelectField(_l("Reach"), choices=_scale_choices(REACH_LABELS), coerce=_int_or_none)
    touchpoint = SelectField(
        _l("Touchpoint"), choices=_enum_choices(Channel, _l("unknown")), default=""
    )
    process_step = SelectField(
        _l("Process step"), choices=_enum_choices(ProcessStep, _l("unknown")), default=""
    )
    responsible_party = SelectField(
        _l("Responsible party"), choices=_enum_choices(ResponsibleParty, _l("unknown")), default=""
    )
    status = SelectField(_l("Status"), choices=_enum_choices(CaseStatus))
    submit = SubmitField(_l("Save classification"))


class CallBackForm(FlaskForm):
    called_at = DateTimeLocalField(
        _l("When"), format="%Y-%m-%dT%H:%M", validators=[InputRequired()]
    )
    outcome = SelectField(_l("Outcome"), choices=_enum_choices(CallBackOutcome))
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=MAX_NOTE)])
    submit = SubmitField(_l("Log call-back"))


class LinkForm(FlaskForm):
    """Link a case to an open or confirmed root cause, or unlink with the empty choice."""

    root_cause_id = SelectField(_l("Root cause"), coerce=_int_or_none)
    submit = SubmitField(_l("Link"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.root_cause_id.choices = [SelectChoice("", _l("no root cause"))] + [
            SelectChoice(str(rc.id), f"#{rc.id} {rc.title}") for rc in linkable_root_causes()
        ]


class RootCauseForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=MAX_TITLE)])
    description = TextAreaField(
        _l("Description"), validators=[Optional(), Length(max=MAX_DESCRIPTION)]
    )
    problem_type = SelectField(
        _l("Problem type"), choices=_enum_choices(ProblemType, _l("not classified")), default=""
    )
    themes = StringField(
        _l("Themes"),
        validators=[Optional(), Length(max=1000)],
        description=_l("Keywords, separated by commas."),
    )
    submit = SubmitField(_l("Create root cause"))


class RootCauseEditForm(RootCauseForm):
    status = SelectField(_l("Status"), choices=_enum_choices(RootCauseStatus))
    submit = SubmitField(_l("Save"))


class NewRootCauseForCaseForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=MAX_TITLE)])
    description = TextAreaField(
        _l("Description"), validators=[Optional(), Length(max=MAX_DESCRIPTION)]
    )
    submit = SubmitField(_l("Create and link"))


class WhyForm(FlaskForm):
    statement = TextAreaField(_l("Why?"), validators=[DataRequired(), Length(max=MAX_STATEMENT)])
    category = SelectField(_l("Fishbone category"))
    submit = SubmitField(_l("Add why"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.category.choices = [
            SelectChoice(value, category_label(value)) for value in fishbone_categories()
        ]


class MoveForm(FlaskForm):
    direction = HiddenField(validators=[DataRequired()])


class ButtonForm(FlaskForm):
    """A button that posts nothing but its CSRF token (open a case, delete a why)."""
