"""Sign-in and account forms."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from .services import password_validators


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("Sign in"))


class LanguageForm(FlaskForm):
    """The language switcher in the page header."""

    lang = StringField(validators=[DataRequired()])

    def validate_lang(self, field: StringField) -> None:
        if field.data not in current_app.config["LANGUAGES"]:
            raise ValidationError(_l("Unknown language."))


class AccountForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Optional(), Length(max=200)])
    language = SelectField(_l("Language"), choices=[])
    # No Optional(): it would stop the chain before validate_current_password runs.
    current_password = PasswordField(_l("Current password"))
    new_password = PasswordField(
        _l("New password"),
        validators=[Optional(), *password_validators()],
    )
    confirm_password = PasswordField(
        _l("Repeat new password"),
        validators=[EqualTo("new_password", message=_l("The passwords do not match."))],
    )
    submit = SubmitField(_l("Save"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.language.choices = [SelectChoice("", _l("Browser default"))] + [
            SelectChoice(code, name) for code, name in current_app.config["LANGUAGES"].items()
        ]

    def validate_current_password(self, field: PasswordField) -> None:
        if self.new_password.data and not field.data:
            raise ValidationError(_l("Enter your current password to set a new one."))
