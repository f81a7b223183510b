"""The customer's survey form, built from a template version's questions."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from .models import QuestionKind, TemplateVersion
from .responses import MAX_COMMENT_LENGTH


class SurveyFormBase(FlaskForm):
    """Every field is added per question; keys are the question keys."""


def survey_form_class(version: TemplateVersion, locale: str) -> type[SurveyFormBase]:
    """A form class with one field per question of ``version``, labelled in ``locale``.

    Rating questions accept only their scale (CSAT 1–5, NPS 0–10, CES 1–7);
    optional questions may be left out and are then stored as skipped.
    """
    fields: dict[str, object] = {}
    for question in version.questions:
        label = question.text_for(locale)
        if question.kind is QuestionKind.TEXT:
            required = [InputRequired(_l("Please answer this question."))]
            fields[question.key] = TextAreaField(
                label,
                validators=[
                    *(required if question.required else [Optional()]),
                    Length(
                        max=MAX_COMMENT_LENGTH,
                        message=_l("Please keep it under %(max)s characters.",
                                   max=MAX_COMMENT_LENGTH),
                    ),
                ],
            )  # fmt: skip
            continue
        low, high = question.kind.scale or (0, 0)
        fields[question.key] = RadioField(
            label,
            choices=[SelectChoice(value, str(value)) for value in range(low, high + 1)],
            coerce=int,
            validate_choice=False,
            validators=[
                InputRequired(_l("Please choose an answer."))
                if question.required
                else Optional(),
                NumberRange(
                    min=low, max=high,
                    message=_l("Choose a number from %(low)s to %(high)s.", low=low, high=high),
                ),
            ],
        )  # fmt: skip
    return type("SurveyForm", (SurveyFormBase,), fields)
