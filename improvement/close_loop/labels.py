"""Translated names of the close-the-loop message statuses."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from survey_app.labels import LABELS, EnumLabels

from .models import LoopMessageStatus

ENUM_LABELS = EnumLabels.of(
    {
        LoopMessageStatus: {
            LoopMessageStatus.PENDING: _l("waiting to be sent"),
            LoopMessageStatus.SENT: _l("sent"),
            LoopMessageStatus.SKIPPED: _l("skipped (opted out)"),
            LoopMessageStatus.FAILED: _l("delivery failed"),
        }
    }
)


def init_app() -> None:
    """Teach the shell's ``label`` filter these statuses."""
    LABELS.include(ENUM_LABELS)
