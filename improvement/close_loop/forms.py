"""The close-the-loop template form."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length

from .services import MAX_BODY, MAX_SUBJECT


class TemplateForm(FlaskForm):
    language = HiddenField()
    subject = StringField(_l("Subject"), validators=[DataRequired(), Length(max=MAX_SUBJECT)])
    body = TextAreaField(
        _l("Body"),
        validators=[DataRequired(), Length(max=MAX_BODY)],
        description=_l("Placeholders: {name}, {cycle}, {what_changed} (the Act note)."),
        render_kw={"rows": 12},
    )
    preview = SubmitField(_l("Preview"))
    save = SubmitField(_l("Save"))
