"""Display names and units of the KPIs a target can be set on, and value formatting."""

from __future__ import annotations

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

from analysis.metrics import ALL_KPIS

from .models import Level, WebhookFormat

_DIMENSION_NAMES = {
    "overall": _l("overall"),
    "speed": _l("response speed"),
    "professionalism": _l("professionalism"),
    "attitude": _l("attitude"),
    "effectiveness": _l("effectiveness"),
}

KPI_LABELS: dict[str, LazyString] = {
    "nps": _l("NPS"),
    "ces_average": _l("CES average (1–7)"),
    "ces_percent_easy": _l("CES easy (%)"),
    "response_rate": _l("Survey response rate %"),
    "fcr": _l("First-contact resolution %"),
    "reopen_rate": _l("Reopen rate %"),
    "contacts_per_ticket": _l("Contacts per ticket"),
    "sla_breach_rate": _l("SLA breach rate %"),
    "first_response_time_mean": _l("First response, business hours, mean (s)"),
    "first_response_time_median": _l("First response, business hours, median (s)"),
    "first_response_time_p90": _l("First response, business hours, P90 (s)"),
    "resolution_time_mean": _l("Resolution, business hours, mean (s)"),
    "resolution_time_median": _l("Resolution, business hours, median (s)"),
    "resolution_time_p90": _l("Resolution, business hours, P90 (s)"),
    "first_response_time_elapsed_mean": _l("First response, elapsed, mean (s)"),
    "first_response_time_elapsed_median": _l("First response, elapsed, median (s)"),
    "first_response_time_elapsed_p90": _l("First response, elapsed, P90 (s)"),
    "resolution_time_elapsed_mean": _l("Resolution, elapsed, mean (s)"),
    "resolution_time_elapsed_median": _l("Resolution, elapsed, median (s)"),
    "resolution_time_elapsed_p90": _l("Resolution, elapsed, P90 (s)"),
}
for _dim, _name in _DIMENSION_NAMES.items():
    KPI_LABELS[f"csat_{_dim}_average"] = _l("CSAT %(dimension)s, average (1–5)", dimension=_name)
    KPI_LABELS[f"csat_{_dim}_percent"] = _l("CSAT %(dimension)s, %% satisfied", dimension=_name)

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


def kpi_unit(kpi_name: str) -> str:
    """The unit of a KPI as in :class:`analysis.metrics.Kpi`: %, nps, score, contacts, seconds."""
    if kpi_name not in ALL_KPIS:
        raise ValueError(f"unknown KPI {kpi_name!r}")
    if kpi_name == "nps":
        return "nps"
    if kpi_name.endswith("_average"):
        return "score"
    if kpi_name == "contacts_per_ticket":
        return "contacts"
    if kpi_name.startswith(("first_response_time_", "resolution_time_")):
        return "seconds"
    return "%"


def kpi_range(kpi_name: str) -> tuple[float, float | None]:
    """The values a KPI can take (a target outside them can never be met or missed)."""
    unit = kpi_unit(kpi_name)
    if unit == "nps":
        return -100.0, 100.0
    if unit == "%":
        return 0.0, 100.0
    if unit == "score":
        return 1.0, 7.0 if kpi_name.startswith("ces") else 5.0
    return 0.0, None


def format_value(kpi_name: str, value: float | None) -> str:
    """A value as people read it: percentages and NPS to one decimal, scores and ratios to
    two, seconds whole (the rounding of :meth:`analysis.metrics.Kpi.to_json`)."""
    if value is None:
        return "–"
    unit = kpi_unit(kpi_name)
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "nps":
        return f"{value:.1f}"
    if unit == "seconds":
        return f"{value:.0f} s"
    return f"{value:.2f}"


def format_gap(kpi_name: str, gap: float | None) -> str:
    """A gap with its sign (+ is on the bad side of the target)."""
    if gap is None:
        return "–"
    text = format_value(kpi_name, abs(gap))
    return ("+" if gap > 0 else "−" if gap < 0 else "") + text
