"""Forms of the survey admin pages: templates, draft questions, policy, invitation filters."""

from __future__ import annotations

from enum import Enum

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    SearchField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from ..labels import LABELS
from ..models import Channel, Tier
from .models import InvitationStatus, QuestionKind, SkipReason
from .policy import POLICY_RANGES, PolicyError, check_reminder
from .versions import KEY_PATTERN

#: Longest question and intro text accepted (a question is one sentence or two).
MAX_QUESTION_LENGTH = 500
MAX_INTRO_LENGTH = 1000


class CheckboxesField(SelectMultipleField):
    """Several choices as a list of check boxes (none ticked = any)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _enum_choices(enum_cls: type[Enum]) -> list[SelectChoice]:
    return [SelectChoice(m.value, LABELS[m]) for m in enum_cls]


def _filter_choices(enum_cls: type[Enum]) -> list[SelectChoice]:
    return [SelectChoice("", _l("Any"))] + _enum_choices(enum_cls)


class TemplateForm(FlaskForm):
    """A template's name and targeting (create and edit)."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    channels = CheckboxesField(
        _l("Ticket channels"), choices=_enum_choices(Channel), render_kw={"class": "checks"}
    )
    tiers = CheckboxesField(
        _l("Customer tiers"), choices=_enum_choices(Tier), render_kw={"class": "checks"}
    )
    priority = IntegerField(
        _l("Priority"),
        default=0,
        validators=[InputRequired(), NumberRange(min=-1000, max=1000)],
    )
    active = BooleanField(_l("Active"), default=True)
    submit = SubmitField(_l("Save"))


class IntroForm(FlaskForm):
    """The draft's introduction above the questions, in both languages."""

    en = TextAreaField(
        _l("Introduction (English)"), validators=[Optional(), Length(max=MAX_INTRO_LENGTH)]
    )
    zh_Hans = TextAreaField(
        _l("Introduction (Chinese)"), validators=[Optional(), Length(max=MAX_INTRO_LENGTH)]
    )
    submit = SubmitField(_l("Save introduction"))


class QuestionForm(FlaskForm):
    """One draft question's texts and required flag (its key and kind stay fixed)."""

    en = TextAreaField(_l("English"), validators=[Optional(), Length(max=MAX_QUESTION_LENGTH)])
    zh_Hans = TextAreaField(
        _l("Chinese"), validators=[Optional(), Length(max=MAX_QUESTION_LENGTH)]
    )
    required = BooleanField(_l("Answer required"))
    submit = SubmitField(_l("Save question"))


class NewQuestionForm(QuestionForm):
    """A question to append to the draft."""

    key = StringField(
        _l("Key"),
        validators=[
            DataRequired(),
            Regexp(
                KEY_PATTERN,
                message=_l(
                    "Use lower-case letters, digits and underscores, starting with a letter."
                ),
            ),
        ],
    )
    kind = SelectField(_l("Kind"), choices=_enum_choices(QuestionKind))
    submit = SubmitField(_l("Add question"))


class MoveForm(FlaskForm):
    direction = SelectField(
        choices=[SelectChoice("up", _l("Move up")), SelectChoice("down", _l("Move down"))]
    )


class ActionForm(FlaskForm):
    """A button that changes state: only the CSRF token is posted."""


def _policy_number(label: object, name: str, **kwargs: object) -> IntegerField:
    low, high = POLICY_RANGES[name]
    return IntegerField(
        label, validators=[InputRequired(), NumberRange(min=low, max=high)], **kwargs
    )


class PolicyForm(FlaskForm):
    """The invitation policy; each number must be within :data:`POLICY_RANGES`."""

    delay_minutes = _policy_number(_l("Send after closing (minutes)"), "delay_minutes")
    link_valid_days = _policy_number(_l("Link valid (days)"), "link_valid_days")
    reminder_after_days = _policy_number(
        _l("Reminder after (days, 0 = no reminder)"), "reminder_after_days"
    )
    fatigue_days = _policy_number(
        _l("At most one invitation per customer per (days, 0 = no cap)"), "fatigue_days"
    )
    sampling_percent = _policy_number(_l("Invite this share of closed tickets (%)"),
                                      "sampling_percent")  # fmt: skip
    exempt_detractors = BooleanField(
        _l("Exempt customers whose last answer was a detractor (NPS 0–6) from the cap")
    )
    max_attempts = _policy_number(_l("Delivery attempts before giving up"), "max_attempts")
    submit = SubmitField(_l("Save policy"))

    def validate_reminder_after_days(self, field: IntegerField) -> None:
        if field.data is None or self.link_valid_days.data is None:
            return
        try:
            check_reminder(field.data, self.link_valid_days.data)
        except PolicyError as exc:
            raise ValidationError(str(exc)) from None


class InvitationFilterForm(FlaskForm):
    """The GET filter bar above the invitation list (no state change, so no CSRF token)."""

    class Meta:
        csrf = False

    q = SearchField(_l("Search"), validators=[Optional(), Length(max=200)])
    status = SelectField(_l("Status"), choices=_filter_choices(InvitationStatus), default="")
    skip_reason = SelectField(_l("Reason"), choices=_filter_choices(SkipReason), default="")
