"""The Trends sheet: the overview KPIs per ISO week and per calendar month
(:func:`analysis.metrics.compute` with ``grain``), with native line charts (the target drawn
as a second series) and a column chart of NPS answers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from flask_babel import gettext as _
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.worksheet.worksheet import Worksheet

from analysis.metrics import OVERVIEW_KPIS, Kpi, Scope, compute
from analysis.metrics.catalog import GRAIN_LABELS, kpi_unit

from ..cells import (
    DATE_FORMAT,
    TITLE_FONT,
    UNIT_FORMATS,
    ReportContext,
    kpi_cell,
    kpi_label,
    show_axes,
    write_header,
)
from ..layout import fit_columns, place_charts, set_up_printing

#: The KPIs drawn with their target in the trend charts.
CHARTED_KPIS = ("nps", "csat_overall_percent")
MONTH_FORMAT = "yyyy-mm"
#: The size of each chart in centimetres: two rows of them fit on a printed page.
CHART_HEIGHT, CHART_WIDTH = 7.0, 18.0


def write_trends(
    ws: Worksheet, report: ReportContext, targets: Mapping[str, float | None]
) -> None:
    """Fill the Trends sheet; ``targets`` are the Summary's (a target line where one is set)."""
    weekly_top = 2
    ws["A1"] = _("Weekly (weeks start on Monday)")
    ws["A1"].font = TITLE_FONT
    weekly_rows = _trend_table(ws, report.scope, targets, weekly_top, "week", _("Week starting"))
    monthly_title = weekly_top + weekly_rows + 3
    ws.cell(row=monthly_title, column=1, value=_("Monthly")).font = TITLE_FONT
    monthly_rows = _trend_table(ws, report.scope, targets, monthly_title + 1, "month", _("Month"))
    fit_columns(ws, [weekly_top, monthly_title + 1], notes=["A1", f"A{monthly_title}"])
    charts: list[LineChart | BarChart] = []
    for top, rows, grain, period_format in (
        (weekly_top, weekly_rows, _("weekly"), DATE_FORMAT),
        (monthly_title + 1, monthly_rows, _("monthly"), MONTH_FORMAT),
    ):
        if rows == 0:
            continue
        charts += [
            _line_chart(ws, targets, (top, rows), name, grain, period_format)
            for name in CHARTED_KPIS
        ]
        charts.append(_answers_chart(ws, top, rows, grain))
    # Below the tables, so that printing one page wide keeps the tables' size.
    place_charts(ws, charts, monthly_title + monthly_rows + 3, weekly_top)
    # The weekly header repeats on every page: the monthly table's columns are the same.
    set_up_printing(ws, weekly_top, period=report.period, freeze_column=2)


def _trend_columns() -> dict[str, tuple[int, int]]:
    """KPI → (value column, n column) in a trend table."""
    return {name: (2 + 2 * i, 3 + 2 * i) for i, name in enumerate(OVERVIEW_KPIS)}


def _target_column(name: str) -> int:
    return 2 + 2 * len(OVERVIEW_KPIS) + CHARTED_KPIS.index(name)


def _trend_table(
    ws: Worksheet,
    scope: Scope,
    targets: Mapping[str, float | None],
    top: int,
    grain: Any,
    period_header: str,
) -> int:
    result = compute(scope, grain=grain, metrics=OVERVIEW_KPIS)
    headers = [period_header]
    for name in OVERVIEW_KPIS:
        headers += [kpi_label(name), _("%(kpi)s n", kpi=kpi_label(name))]
    headers += [_("%(kpi)s target", kpi=kpi_label(name)) for name in CHARTED_KPIS]
    write_header(ws, top, headers)
    columns = _trend_columns()
    for offset, group in enumerate(result.groups):
        row = top + 1 + offset
        cell = ws.cell(row=row, column=1, value=date.fromisoformat(group.key["period"]))
        cell.number_format = DATE_FORMAT if grain == "week" else MONTH_FORMAT
        for name, (value_column, n_column) in columns.items():
            kpi: Kpi = group.kpis[name]
            kpi_cell(ws, row, value_column, name, kpi.value)
            ws.cell(row=row, column=n_column, value=kpi.n).number_format = "#,##0"
        for name in CHARTED_KPIS:
            target = targets.get(name)
            if target is not None:
                kpi_cell(ws, row, _target_column(name), name, target)
    return len(result.groups)


def _line_chart(
    ws: Worksheet,
    targets: Mapping[str, float | None],
    table: tuple[int, int],
    name: str,
    grain: str,
    period_format: str,
) -> LineChart:
    top, rows = table
    chart = LineChart()
    chart.title = f"{kpi_label(name)} ({GRAIN_LABELS.get(grain, grain)})"
    chart.y_axis.title = kpi_label(name)
    chart.y_axis.number_format = UNIT_FORMATS[kpi_unit(name)]
    chart.x_axis.number_format = period_format
    chart.height, chart.width = CHART_HEIGHT, CHART_WIDTH
    show_axes(chart)
    value_column = _trend_columns()[name][0]
    data = Reference(ws, min_col=value_column, min_row=top, max_row=top + rows)
    chart.add_data(data, titles_from_data=True)
    if targets.get(name) is not None:
        target_column = _target_column(name)
        target = Reference(ws, min_col=target_column, min_row=top, max_row=top + rows)
        chart.add_data(target, titles_from_data=True)
        line = chart.series[-1]
        line.graphicalProperties.line.dashStyle = "dash"
        line.graphicalProperties.line.solidFill = "C00000"
        line.smooth = False
    chart.series[0].smooth = False
    chart.set_categories(Reference(ws, min_col=1, min_row=top + 1, max_row=top + rows))
    return chart


def _answers_chart(ws: Worksheet, top: int, rows: int, grain: str) -> BarChart:
    chart = BarChart()
    chart.type = "col"
    chart.title = _("NPS answers (%(grain)s)", grain=grain)
    chart.height, chart.width = CHART_HEIGHT, CHART_WIDTH
    show_axes(chart)
    n_column = _trend_columns()["nps"][1]
    chart.add_data(
        Reference(ws, min_col=n_column, min_row=top, max_row=top + rows),
        titles_from_data=True,
    )
    chart.set_categories(Reference(ws, min_col=1, min_row=top + 1, max_row=top + rows))
    chart.legend = None
    return chart
