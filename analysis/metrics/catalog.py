"""The KPI catalogue: every KPI's label, unit, direction, range and display format, and the
labels of the dimensions a view filters or groups by, written once.

The formulas are in :mod:`analysis.metrics.definitions`; this module says how a KPI is
named and shown. The dashboards, the targets and their alerts, the Excel report and the
PDCA pages all read it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Literal

from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from survey_app.labels import label
from survey_app.models import Channel, Priority, Tier

from .definitions import ALL_KPIS

Direction = Literal["higher", "lower"]

_DIMENSION_NAMES = {
    "overall": _l("overall"),
    "speed": _l("response speed"),
    "professionalism": _l("professionalism"),
    "attitude": _l("attitude"),
    "effectiveness": _l("effectiveness"),
}

#: The full label of each KPI (targets, alerts, the report, PDCA).
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

#: The short labels of the overview cards.
CARD_LABELS: dict[str, LazyString] = {
    "csat_overall_percent": _l("CSAT %"),
    "nps": _l("NPS"),
    "ces_average": _l("CES (1–7)"),
    "first_response_time_p90": _l("First response P90, business hours"),
    "first_response_time_elapsed_p90": _l("First response P90, elapsed"),
    "sla_breach_rate": _l("SLA breach rate"),
    "response_rate": _l("Response rate"),
}
#: Every dimension a view filters or groups by, as people read it.
DIMENSION_LABELS: dict[str, LazyString] = {
    "team": _l("Team"),
    "agent": _l("Agent"),
    "channel": _l("Channel"),
    "priority": _l("Priority"),
    "product_line": _l("Product line"),
    "region": _l("Region"),
    "customer_tier": _l("Customer tier"),
    "customer_is_new": _l("New or returning"),
    "template_version": _l("Survey version"),
}
#: The time buckets of a trend, as people read them.
GRAIN_LABELS: dict[str, LazyString] = {"day": _l("day"), "week": _l("week"), "month": _l("month")}
#: The dimensions whose values are free text (their filter choices are the values seen).
TEXT_FILTERS = ("team", "agent", "product_line", "region")

#: KPIs for which a lower value is better; every other KPI is better higher.
LOWER_IS_BETTER_PREFIXES = (
    "sla_breach_rate",
    "reopen_rate",
    "contacts_per_ticket",
    "first_response_time_",
    "resolution_time_",
)


def direction_of(kpi_name: str) -> Direction:
    """``"lower"`` for breach/reopen rates, contacts and durations, else ``"higher"``.
    Refuses (ValueError) a name that is not in ``ALL_KPIS``."""
    if kpi_name not in ALL_KPIS:
        raise ValueError(f"unknown KPI {kpi_name!r}")
    return "lower" if kpi_name.startswith(LOWER_IS_BETTER_PREFIXES) else "higher"


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
    two, durations in minutes or hours (:func:`format_duration`)."""
    if value is None:
        return "–"
    unit = kpi_unit(kpi_name)
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "nps":
        return f"{value:.1f}"
    if unit == "seconds":
        return format_duration(value)
    return f"{value:.2f}"


def format_duration(seconds: float) -> str:
    """A duration as people read it: minutes to one decimal under an hour, else hours (the
    dashboards, targets and alerts all show durations this way)."""
    if seconds < 3600:
        return _("%(minutes)s min", minutes=f"{seconds / 60:.1f}")
    return _("%(hours)s h", hours=f"{seconds / 3600:.1f}")


def format_gap(kpi_name: str, gap: float | None) -> str:
    """A gap with its sign (+ is on the bad side of the target)."""
    if gap is None:
        return "–"
    text = format_value(kpi_name, abs(gap))
    return ("+" if gap > 0 else "−" if gap < 0 else "") + text


def csat_dimension_label(dimension: str) -> str:
    """The name of a CSAT dimension (``overall``, ``speed``...); refuses (KeyError) others."""
    return str(_DIMENSION_NAMES[dimension])


def dimension_value_label(value: Any, name: str) -> str:
    """A value of dimension ``name`` as people read it: channels, priorities and tiers by
    their translated names, new or returning customers in words, free text as it is."""
    value = getattr(value, "value", value)
    if name == "customer_is_new" or isinstance(value, bool):
        return str(
            _l("new customers")
            if value in (True, "true", "True", "1", 1, "new")
            else _l("returning customers")
        )
    kinds: dict[str, type[enum.Enum]] = {
        "channel": Channel,
        "priority": Priority,
        "customer_tier": Tier,
    }
    if name in kinds:
        try:
            return label(kinds[name](value))
        except ValueError:
            return str(value)
    return str(value)


def describe_scope(filters: Mapping[str, Any] | None) -> str:
    """A view's filters as people read them: ``Channel: e-mail, chat; Team: VIP desk`` (dimension
    and enum values by their translated names, free text as typed), or "whole organisation"."""
    if not filters:
        return str(_l("whole organisation"))
    parts = []
    for name, values in filters.items():
        items = values if isinstance(values, list | tuple) else [values]
        shown = ", ".join(dimension_value_label(item, name) for item in items)
        parts.append(f"{DIMENSION_LABELS.get(name, name)}: {shown}")
    return "; ".join(parts)
