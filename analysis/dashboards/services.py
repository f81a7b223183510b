"""The dashboards' operations: everything a page, a CSV download or a report needs, per scope.

Views call these and render; nothing here reads the request. KPI numbers come
from :func:`analysis.metrics.compute`, the rest from :mod:`.queries`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import current_app

from analysis.metrics import OVERVIEW_KPIS, Kpi, MetricsResult, Scope, compute
from analysis.metrics.scope import Grain
from analysis.text.themes import Theme

from . import heatmap, queries
from .stats import Correlation, PChartPoint, p_chart, pearson

#: Where the KPI-target module plugs the cards' status colours in::
#:
#:     app.extensions[KPI_STATUS_HOOK] = status_for   # (kpi_name, kpi, scope) -> status
#:
#: The status object's ``level`` ("ok", "yellow", "orange", "red" ...) becomes the
#: card's colour and its ``target`` is shown; without a hook cards have no status.
KPI_STATUS_HOOK = "closedloop.kpi_status"
#: Where other parts of the app (the PDCA cycles) plug the trend charts' markers in::
#:
#:     app.extensions.setdefault(TIMELINE_MARKERS_HOOK, []).append(provider)
#:
#: each provider is ``(scope) -> [(local date, label)]``.
TIMELINE_MARKERS_HOOK = "closedloop.timeline_markers"
#: Every table the CSV download offers.
TABLES = ("cards", "breakdown", "trend", "themes", "heatmap", "drivers", "pchart", "responses")


def default_grain(scope: Scope) -> Grain:
    """The trend's grain when the view does not name one, following the window: days under
    30 days, weeks from 30 to 90 days, months beyond (a point per bucket stays readable and
    each point rests on enough answers)."""
    if scope.days < 30:
        return "day"
    return "week" if scope.days <= 90 else "month"


@dataclass(frozen=True)
class Card:
    """One overview card: the KPI now, the same KPI over the previous period of equal
    length, the change (value − previous value, in the KPI's unit) and the status."""

    name: str
    kpi: Kpi
    previous: Kpi
    status: Any = None

    @property
    def change(self) -> float | None:
        if self.kpi.value is None or self.previous.value is None:
            return None
        return self.kpi.value - self.previous.value


def kpi_status(name: str, kpi: Kpi, scope: Scope) -> Any:
    """The status the registered :data:`KPI_STATUS_HOOK` gives ``kpi`` (None without one)."""
    hook: Callable[[str, Kpi, Scope], Any] | None = current_app.extensions.get(KPI_STATUS_HOOK)
    return hook(name, kpi, scope) if hook is not None else None


def overview_cards(scope: Scope) -> list[Card]:
    """The cards of :data:`~analysis.metrics.OVERVIEW_KPIS` with their change vs
    :meth:`Scope.previous` (two :func:`compute` calls restricted to those KPIs)."""
    now = compute(scope, metrics=OVERVIEW_KPIS).overall
    before = compute(scope.previous(), metrics=OVERVIEW_KPIS).overall
    return [
        Card(name, now[name], before[name], kpi_status(name, now[name], scope))
        for name in OVERVIEW_KPIS
    ]


def kpi_trend(scope: Scope, grain: Grain) -> MetricsResult:
    """NPS and overall CSAT % per time bucket (every bucket listed)."""
    return compute(scope, grain=grain, metrics=("nps", "csat_overall_percent"))


def bucket_label(day: date, grain: Grain) -> str:
    """The label of the time bucket ``day`` falls in (its first day, as in
    :func:`analysis.metrics.scope.time_buckets`)."""
    if grain == "week":
        day -= timedelta(days=day.weekday())
    elif grain == "month":
        day = day.replace(day=1)
    return day.isoformat()


def timeline_markers(scope: Scope, grain: Grain) -> list[tuple[str, str]]:
    """Every marker the registered providers (:data:`TIMELINE_MARKERS_HOOK`) give for
    ``scope``, as ``(bucket label, label)`` by date; days outside the scope are left out."""
    found: list[tuple[date, str]] = []
    for provider in current_app.extensions.get(TIMELINE_MARKERS_HOOK, []):
        found += provider(scope)
    return [
        (bucket_label(day, grain), label)
        for day, label in sorted(found)
        if scope.start <= day <= scope.end
    ]


def breakdown(scope: Scope, group_by: str) -> MetricsResult:
    """The overview KPIs per value of ``group_by`` (team, agent, channel ...)."""
    return compute(scope, group_by=group_by, metrics=OVERVIEW_KPIS)


def drivers(scope: Scope) -> dict[str, Correlation]:
    """Pearson's r of each CSAT dimension with NPS (:func:`.stats.pearson` on the SQL sums)."""
    min_sample = int(current_app.config["METRICS_MIN_SAMPLE"])
    return {
        dim: pearson(
            sums.n,
            sums.sum_x,
            sums.sum_y,
            sums.sum_xy,
            sums.sum_x2,
            sums.sum_y2,
            min_sample=min_sample,
        )
        for dim, sums in queries.driver_sums(scope).items()
    }


def detractor_pchart(scope: Scope, page_grain: Grain | None = None) -> list[PChartPoint]:
    """The p-chart of % detractors among NPS answers per ISO week of the period, from the
    NPS KPI's counts per week (:func:`.stats.p_chart`). ``page_grain``: the grain of the
    page's trends; unless weeks, nothing else on the page reads by week (the read sums the
    NPS counts alone: a year with two regions, two priorities and a product line summed 74
    columns of 17,500 week pieces' combinations)."""
    result = compute(scope, grain="week", metrics=("nps",), alone=page_grain not in (None, "week"))
    return p_chart(
        [
            (group.key["period"], group.kpis["nps"].n, int(group.kpis["nps"].counts["detractors"]))
            for group in result.groups
        ]
    )


def _value(value: Any) -> Any:
    value = getattr(value, "value", value)
    return round(value, 4) if isinstance(value, float) else value


def _kpi_cells(kpi: Kpi) -> list[Any]:
    ci = kpi.ci or (None, None)
    return [_value(kpi.value), kpi.n, kpi.low_confidence, _value(ci[0]), _value(ci[1])]


def _kpi_header(name: str) -> list[str]:
    return [name, f"{name}_n", f"{name}_low_confidence", f"{name}_ci_low", f"{name}_ci_high"]


def table_rows(
    table: str,
    scope: Scope,
    *,
    group_by: str,
    grain: Grain,
    keyword: str | None = None,
    sentiment: str | None = None,
) -> tuple[list[str], Iterable[Sequence[Any]]]:
    """The header and rows of one dashboard table, as the CSV download writes them.

    Raises ``ValueError`` for a table not in :data:`TABLES`.
    """
    if table == "cards":
        cards = overview_cards(scope)
        header = ["kpi", "value", "n", "low_confidence", "ci_low", "ci_high", "previous", "change"]
        return header, (
            [card.name, *_kpi_cells(card.kpi), _value(card.previous.value), _value(card.change)]
            for card in cards
        )
    if table == "breakdown":
        result = breakdown(scope, group_by)
        header = [group_by, *(h for name in OVERVIEW_KPIS for h in _kpi_header(name))]
        return header, (
            [
                _value(group.key[group_by]),
                *(cell for name in OVERVIEW_KPIS for cell in _kpi_cells(group.kpis[name])),
            ]
            for group in result.groups
        )
    if table == "trend":
        result = kpi_trend(scope, grain)
        names = ("nps", "csat_overall_percent")
        header = ["period", *(h for name in names for h in _kpi_header(name))]
        return header, (
            [group.key["period"], *(c for n in names for c in _kpi_cells(group.kpis[n]))]
            for group in result.groups
        )
    if table == "themes":
        themes: list[Theme] = queries.top_negative_themes(scope)
        header = ["keyword", "responses", "negative", "negative_share"]
        header += [f"example_{number}" for number in range(1, 4)]
        return header, (
            [
                t.keyword,
                t.count,
                t.negative_count,
                round(t.negative_share, 4),
                *[e.comment for e in t.examples],
                *[None] * (3 - len(t.examples)),
            ]
            for t in themes
        )
    if table == "heatmap":
        grid = heatmap.frt_heatmap(scope)
        header = [
            "weekday",
            "hour",
            "tickets",
            "mean_first_response_seconds",
            "mean_first_response_elapsed_seconds",
        ]
        return header, (
            [
                cell.weekday + 1,
                cell.hour,
                cell.n,
                _value(cell.mean_seconds),
                _value(cell.mean_elapsed_seconds),
            ]
            for row in grid
            for cell in row
        )
    if table == "drivers":
        found = drivers(scope)
        header = ["csat_dimension", "pearson_r_with_nps", "n", "ci_low", "ci_high"]
        header.append("low_confidence")
        return header, (
            [
                dim,
                _value(c.r),
                c.n,
                _value(c.ci[0] if c.ci else None),
                _value(c.ci[1] if c.ci else None),
                c.low_confidence,
            ]
            for dim, c in found.items()
        )
    if table == "pchart":
        points = detractor_pchart(scope)
        header = ["week", "nps_answers", "detractors", "percent", "centre", "lcl", "ucl"]
        header.append("out_of_control")
        return header, (
            [
                p.period,
                p.n,
                p.defects,
                _value(p.percent),
                _value(p.centre),
                _value(p.lower),
                _value(p.upper),
                p.out_of_control,
            ]
            for p in points
        )
    if table == "responses":
        statement = queries.responses_query(scope, keyword=keyword, sentiment=sentiment)
        header = [
            "response_id",
            "submitted_at",
            "ticket_id",
            "team",
            "agent",
            "channel",
            "priority",
            "product_line",
            "region",
            "customer_tier",
            "csat_overall",
            "nps",
            "ces",
            "sentiment",
            "comment",
        ]
        from survey_app.extensions import db

        def rows() -> Iterator[list[Any]]:
            for r in db.session.scalars(statement.execution_options(yield_per=1000)):
                yield [
                    r.id,
                    r.submitted_at.isoformat(),
                    r.ticket_id,
                    r.team,
                    r.agent,
                    _value(r.channel),
                    _value(r.priority),
                    r.product_line,
                    r.region,
                    _value(r.customer_tier),
                    r.csat_overall,
                    r.nps,
                    r.ces,
                    _value(r.sentiment_label),
                    r.comment,
                ]

        return header, rows()
    raise ValueError(f"unknown table {table!r}")
