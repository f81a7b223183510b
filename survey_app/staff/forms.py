"""Staff forms: ticket filters and user administration."""

from __future__ import annotations

from enum import Enum

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SearchField,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional

from ..auth.services import password_validators
from ..labels import LABELS
from ..models import Channel, Priority, Role, TicketStatus


def _choices(enum_cls: type[Enum], blank: object) -> list[SelectChoice]:
    return [SelectChoice("", blank)] + [SelectChoice(m.value, LABELS[m]) for m in enum_cls]


def _role_choices() -> list[SelectChoice]:
    return [SelectChoice(role.value, LABELS[role]) for role in Role]


class TicketFilterForm(FlaskForm):
    """The GET filter bar above the ticket list (no state change, so no CSRF token)."""

    class Meta:
        csrf = False

    q = SearchField(_l("Search"), validators=[Optional(), Length(max=200)])
    status = SelectField(_l("Status"), choices=_choices(TicketStatus, _l("Any")), default="")
    priority = SelectField(_l("Priority"), choices=_choices(Priority, _l("Any")), default="")
    channel = SelectField(_l("Channel"), choices=_choices(Channel, _l("Any")), default="")
    team = StringField(_l("Team"), validators=[Optional(), Length(max=100)])


class UserCreateForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)])
    name = StringField(_l("Name"), validators=[Optional(), Length(max=200)])
    role = SelectField(_l("Role"), choices=_role_choices())
    password = PasswordField(
        _l("Initial password"),
        validators=[DataRequired(), *password_validators()],
    )
    submit = SubmitField(_l("Create user"))


class UserEditForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Optional(), Length(max=200)])
    role = SelectField(_l("Role"), choices=_role_choices())
    active = BooleanField(_l("Active"))
    unlock = BooleanField(_l("Clear failed sign-ins and lock-out"))
    new_password = PasswordField(
        _l("Set a new password"),
        validators=[Optional(), *password_validators()],
    )
    submit = SubmitField(_l("Save"))
