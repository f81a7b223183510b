"""Labels of the target levels and webhook formats; the KPIs' labels, units and formats are
the catalogue's (:mod:`analysis.metrics.catalog`), re-exported here for the targets."""

from __future__ import annotations

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

from analysis.metrics.catalog import (  # noqa: F401  (the targets' names for them)
    KPI_LABELS,
    format_gap,
    format_value,
    kpi_range,
    kpi_unit,
)

from .models import Level, WebhookFormat

LEVEL_LABELS: dict[str, LazyString] = {
    Level.OK: _l("on target"),
    Level.YELLOW: _l("yellow"),
    Level.ORANGE: _l("orange"),
    Level.RED: _l("red"),
    "low_confidence": _l("too few answers"),
    "no_target": _l("no target"),
}

WEBHOOK_FORMAT_LABELS: dict[WebhookFormat, LazyString] = {
    WebhookFormat.GENERIC: _l("ClosedLoop JSON"),
    WebhookFormat.SLACK: _l("Slack incoming webhook"),
    WebhookFormat.WECOM: _l("WeCom (企业微信) group bot"),
    WebhookFormat.DINGTALK: _l("DingTalk (钉钉) group bot"),
}
