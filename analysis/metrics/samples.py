"""Per-row values behind an average or a duration KPI, for significance tests (PDCA Check).

The KPIs themselves are aggregated in SQL by :func:`analysis.metrics.compute`;
a rank test needs the values, so :func:`kpi_sample` reads exactly the one
column a KPI averages, over the same rows (population, period and filters) the
engine counts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from survey_app.extensions import db
from survey_app.models import Ticket
from survey_app.surveys.models import SurveyResponse

from .definitions import CSAT_DIMENSIONS, DURATION_STATS, DURATIONS
from .populations import DURATION_COLUMNS, Population
from .scope import Scope

#: KPI name → (population, column) for every KPI that is a mean, median or P90 of values.
SAMPLED_KPIS: dict[str, tuple[str, Any]] = {
    **{
        f"csat_{d}_average": ("responses", getattr(SurveyResponse, f"csat_{d}"))
        for d in CSAT_DIMENSIONS
    },
    "ces_average": ("responses", SurveyResponse.ces),
    "contacts_per_ticket": ("tickets", Ticket.contact_count),
    **{
        f"{duration}_{stat}": ("sla", DURATION_COLUMNS[duration])
        for duration in DURATIONS
        for stat in DURATION_STATS
    },
}


def kpi_sample(scope: Scope, kpi: str) -> list[float]:
    """The values ``kpi`` is computed from over ``scope`` (NULLs excluded, as the KPI does).

    Refuses (ValueError) a KPI that is not an average, median or P90 of values.
    """
    if kpi not in SAMPLED_KPIS:
        raise ValueError(f"{kpi!r} is not computed from per-row values")
    kind, column = SAMPLED_KPIS[kpi]
    population = Population(kind)
    begin, end = scope.bounds
    conditions: list[Any] = [population.time >= begin, population.time < end, column.is_not(None)]
    for name, values in scope.filters().items():
        target = population.column(name)
        conditions.append(target == values[0] if name == "customer_is_new" else target.in_(values))
    statement = select(column).select_from(population.from_clause()).where(*conditions)
    return [float(v) for v in db.session.scalars(statement)]
