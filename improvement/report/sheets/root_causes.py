"""The Root causes sheet: the Pareto of :func:`improvement.root_causes.pareto.root_cause_pareto`
over the cases opened in the period (a column chart with the cumulative share as a line on a
second axis) and the dashboards' top negative themes
(:func:`analysis.dashboards.queries.top_negative_themes`)."""

from __future__ import annotations

from flask_babel import gettext as _
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.worksheet.worksheet import Worksheet

from analysis.dashboards.queries import top_negative_themes
from improvement.root_causes.pareto import root_cause_pareto
from survey_app.labels import label

from ..cells import TITLE_FONT, ReportContext, set_widths, show_axes, text, write_header


def write_root_causes(ws: Worksheet, report: ReportContext) -> None:
    """Fill the Root causes sheet."""
    scope = report.scope
    begin, end = scope.bounds
    # The report's team and channel filters apply to the cases' tickets too.
    pareto = root_cause_pareto(begin, end, teams=scope.team, channels=scope.channel)
    ws["A1"] = _("Pareto of root causes (feedback cases opened in the period)")
    ws["A1"].font = TITLE_FONT
    headers = [
        _("Rank"),
        _("Root cause"),
        _("Status"),
        _("Feedback items"),
        _("Weight (severity)"),
        _("Share"),
        _("Cumulative share"),
        _("Vital few"),
    ]
    write_header(ws, 2, headers)
    for offset, item in enumerate(pareto):
        row = 3 + offset
        ws.cell(row=row, column=1, value=offset + 1)
        ws.cell(row=row, column=2, value=text(item.title))
        ws.cell(row=row, column=3, value=str(label(item.status)))
        ws.cell(row=row, column=4, value=item.feedback)
        ws.cell(row=row, column=5, value=item.weight)
        ws.cell(row=row, column=6, value=item.share / 100).number_format = "0.0%"
        ws.cell(row=row, column=7, value=item.cumulative / 100).number_format = "0.0%"
        ws.cell(row=row, column=8, value=_("yes") if item.vital else None)
    if not pareto:
        ws.cell(row=3, column=1, value=_("No feedback linked to a root cause in the period."))
    else:
        ws.add_chart(_pareto_chart(ws, len(pareto)), "J2")
    themes_top = 3 + max(len(pareto), 1) + 2
    themes_top = max(themes_top, 20)
    ws.cell(row=themes_top, column=1, value=_("Top negative themes")).font = TITLE_FONT
    write_header(
        ws,
        themes_top + 1,
        [_("Rank"), _("Theme"), _("Responses"), _("Negative"), _("Negative share")],
    )
    themes = top_negative_themes(scope, limit=10, examples=0)
    for offset, theme in enumerate(themes):
        row = themes_top + 2 + offset
        ws.cell(row=row, column=1, value=offset + 1)
        ws.cell(row=row, column=2, value=text(theme.keyword))
        ws.cell(row=row, column=3, value=theme.count)
        ws.cell(row=row, column=4, value=theme.negative_count)
        ws.cell(row=row, column=5, value=theme.negative_share).number_format = "0.0%"
    if not themes:
        ws.cell(row=themes_top + 2, column=1, value=_("No negative themes in the period."))
    set_widths(ws, [8, 48, 14, 12, 12, 10, 14, 10])


def _pareto_chart(ws: Worksheet, rows: int) -> BarChart:
    bars = BarChart()
    bars.type = "col"
    bars.title = _("Pareto of root causes")
    bars.y_axis.title = _("Weight (severity)")
    bars.add_data(Reference(ws, min_col=5, min_row=2, max_row=2 + rows), titles_from_data=True)
    categories = Reference(ws, min_col=2, min_row=3, max_row=2 + rows)
    bars.set_categories(categories)
    line = LineChart()
    line.add_data(Reference(ws, min_col=7, min_row=2, max_row=2 + rows), titles_from_data=True)
    line.y_axis.axId = 200
    line.y_axis.title = _("Cumulative share")
    line.y_axis.number_format = "0%"
    line.y_axis.scaling.min = 0
    line.y_axis.scaling.max = 1
    line.y_axis.crosses = "max"
    bars += line
    bars.height, bars.width = 9, 18
    show_axes(bars, line)
    return bars
