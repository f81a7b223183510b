"""Forms of the target pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FloatField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from analysis.metrics import ALL_KPIS
from survey_app.labels import LABELS
from survey_app.models import Channel, Priority, Tier

from .labels import KPI_LABELS, WEBHOOK_FORMAT_LABELS
from .models import WebhookFormat
from .services import MAX_WINDOW_DAYS

#: Free-text scope filters: comma-separated values.
TEXT_DIMENSIONS = ("team", "agent", "product_line", "region")


class TargetForm(FlaskForm):
    """A KPI target, its scope, thresholds and notifications."""

    kpi = SelectField(
        _l("KPI"),
        choices=[SelectChoice(name, KPI_LABELS[name]) for name in ALL_KPIS],
        validators=[InputRequired()],
    )
    target = FloatField(_l("Target"), validators=[InputRequired()])
    yellow = FloatField(_l("Yellow beyond a gap of"), validators=[InputRequired()], default=0)
    orange = FloatField(_l("Orange beyond a gap of"), validators=[InputRequired()])
    red = FloatField(_l("Red beyond a gap of"), validators=[InputRequired()])
    team = StringField(_l("Teams"), validators=[Optional(), Length(max=1000)])
    agent = StringField(_l("Agents"), validators=[Optional(), Length(max=1000)])
    product_line = StringField(_l("Product lines"), validators=[Optional(), Length(max=1000)])
    region = StringField(_l("Regions"), validators=[Optional(), Length(max=1000)])
    channel = SelectMultipleField(
        _l("Channels"), choices=[SelectChoice(c.value, LABELS[c]) for c in Channel]
    )
    priority = SelectMultipleField(
        _l("Priorities"), choices=[SelectChoice(p.value, LABELS[p]) for p in Priority]
    )
    customer_tier = SelectMultipleField(
        _l("Customer tiers"), choices=[SelectChoice(t.value, LABELS[t]) for t in Tier]
    )
    customer_is_new = SelectField(
        _l("Customers"),
        choices=[
            SelectChoice("", _l("new and returning")),
            SelectChoice("new", _l("new only")),
            SelectChoice("returning", _l("returning only")),
        ],
        default="",
    )
    window_days = IntegerField(
        _l("Alert window (days)"),
        validators=[InputRequired(), NumberRange(1, MAX_WINDOW_DAYS)],
        default=7,
    )
    alerts_enabled = BooleanField(_l("Check on the schedule and send alerts"), default=True)
    recipients = TextAreaField(_l("E-mail alerts to"), validators=[Optional(), Length(max=5000)])
    webhook_url = StringField(_l("Webhook URL"), validators=[Optional(), Length(max=500)])
    webhook_format = SelectField(
        _l("Webhook format"),
        choices=[SelectChoice(f.value, WEBHOOK_FORMAT_LABELS[f]) for f in WebhookFormat],
        default=WebhookFormat.GENERIC.value,
    )
    note = StringField(_l("Note"), validators=[Optional(), Length(max=500)])
    submit = SubmitField(_l("Save target"))

    def scope_filters(self) -> dict[str, object]:
        """The filters typed into the form: dimension → values (empty ones left out)."""
        filters: dict[str, object] = {}
        for name in TEXT_DIMENSIONS:
            values = [v.strip() for v in (getattr(self, name).data or "").split(",")]
            if any(values):
                filters[name] = [v for v in values if v]
        for name in ("channel", "priority", "customer_tier"):
            if getattr(self, name).data:
                filters[name] = list(getattr(self, name).data)
        if self.customer_is_new.data:
            filters["customer_is_new"] = self.customer_is_new.data == "new"
        return filters

    def recipient_list(self) -> list[str]:
        """Addresses separated by commas, semicolons or new lines."""
        text = (self.recipients.data or "").replace(";", ",").replace("\n", ",")
        return [a.strip() for a in text.split(",") if a.strip()]


class DeleteForm(FlaskForm):
    """Only the CSRF token."""

    submit = SubmitField(_l("Delete"))
