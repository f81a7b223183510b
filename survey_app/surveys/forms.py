"""The customer's survey form, built from a template version's questions."""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from ..normalise import whole_number
from .models import QuestionKind, TemplateVersion
from .published import VersionData
from .responses import MAX_COMMENT_LENGTH


class SurveyFormBase(FlaskForm):
    """Every field is added per question; keys are the question keys."""


class ScaleField(RadioField):
    """A rating scale: a whole number, checked against the scale by ``NumberRange``.

    Anything that is not a whole number leaves the field empty, so the
    question's own message ("choose a number from 1 to 5") is the one shown,
    not WTForms' generic coercion error.
    """

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist:
            return
        try:
            # Digits only (full-width ones normalised): int() alone would take "1_0" as 10.
            self.data = whole_number(valuelist[0])
        except (ValueError, TypeError):  # TypeError: a file, not text
            # WTForms' stubs say int, but a field with no valid number holds None.
            self.data = None  # type: ignore[assignment]


def written_text(value: object) -> str | None:
    """The text as the customer typed it: browsers send line breaks as CR LF, count them as one.

    NUL characters cannot be typed and PostgreSQL cannot store them; they go.
    """
    if not isinstance(value, str):  # None, or a file posted in its place
        return None
    return value.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def cached_survey_form_class(version: VersionData, locale: str) -> type[SurveyFormBase]:
    """:func:`survey_form_class` built once per cached version and locale."""
    form_class = version.form_classes.get(locale)
    if form_class is None:
        form_class = version.form_classes[locale] = survey_form_class(version, locale)
    return form_class


def survey_form_class(version: TemplateVersion | VersionData, locale: str) -> type[SurveyFormBase]:
    """A form class with one field per question of ``version``, labelled in ``locale``.

    Rating questions accept only a whole number on their scale (CSAT 1–5,
    NPS 0–10, CES 1–7); optional questions may be left out and are then stored
    as skipped. Free text is at most ``MAX_COMMENT_LENGTH`` characters.
    """
    fields: dict[str, object] = {}
    for question in version.questions:
        label = question.text_for(locale)
        if question.kind is QuestionKind.TEXT:
            presence = (
                DataRequired(_l("Please answer this question."))
                if question.required
                else Optional()
            )
            fields[question.key] = TextAreaField(
                label,
                filters=[written_text],
                validators=[
                    presence,
                    Length(
                        max=MAX_COMMENT_LENGTH,
                        message=_l("Please shorten your text to %(max)d characters "
                                   "or fewer (it has %(length)d)."),
                    ),
                ],
            )  # fmt: skip
            continue
        low, high = question.kind.scale or (0, 0)
        fields[question.key] = ScaleField(
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


def preselected_answers(
    version: TemplateVersion | VersionData, args: Mapping[str, str]
) -> MultiDict:
    """The rating answers a link pre-selects (``?csat_overall=4``), for a GET.

    Only rating questions can be pre-selected, and only with a value on their
    scale; anything else in the query string is ignored.
    """
    chosen: MultiDict = MultiDict()
    for question in version.questions:
        scale = question.kind.scale
        raw = args.get(question.key)
        if scale is None or raw is None:
            continue
        try:
            value = int(raw)
        except ValueError:
            continue
        if scale[0] <= value <= scale[1]:
            chosen[question.key] = str(value)
    return chosen
