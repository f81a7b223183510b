"""Registers the names of the analysis enums people see (target levels, alert webhook
formats, SLA clocks, comment aspects) with the shell's ``label`` filter."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from survey_app.labels import LABELS, EnumLabels

from .sentiment.aspects import Aspect
from .sla.forms import CLOCK_LABELS
from .sla.models import SlaClock
from .targets.labels import LEVEL_LABELS, WEBHOOK_FORMAT_LABELS
from .targets.models import Level, WebhookFormat

#: The survey dimensions as the comments' aspects (the dashboard's rating-vs-words table).
ASPECT_LABELS = {
    Aspect.SPEED: _l("Response speed"),
    Aspect.PROFESSIONALISM: _l("Professionalism / ability to solve"),
    Aspect.ATTITUDE: _l("Attitude"),
    Aspect.EFFECTIVENESS: _l("Effectiveness of the solution"),
    Aspect.OTHER: _l("other"),
}
ENUM_LABELS = EnumLabels.of(
    {
        Level: {level: LEVEL_LABELS[level] for level in Level},
        WebhookFormat: {f: WEBHOOK_FORMAT_LABELS[f] for f in WebhookFormat},
        SlaClock: {clock: CLOCK_LABELS[clock] for clock in SlaClock},
        Aspect: {aspect: ASPECT_LABELS[aspect] for aspect in Aspect},
    }
)


def init_app() -> None:
    """Teach the shell's ``label`` filter these enums."""
    LABELS.include(ENUM_LABELS)
