"""The Root causes sheet: the Pareto of :func:`improvement.root_causes.pareto.root_cause_pareto`
over the cases opened in the period (a column chart with the cumulative share as a line on a
second axis) and the dashboards' top negative themes
(:func:`analysis.dashboards.queries.top_negative_themes`)."""

from __future__ import annotations

from flask_babel import gettext as _
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.chart.text import RichText
from openpyxl.drawing.text import (
    CharacterProperties,
    Paragraph,
    ParagraphProperties,
    RichTextProperties,
)
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from analysis.dashboards.queries import top_negative_themes
from improvement.root_causes.pareto import root_cause_pareto
from survey_app.labels import label

from ..cells import TITLE_FONT, ReportContext, show_axes, text, write_header
from ..layout import fit_columns, place_charts, set_up_printing, shortened

#: The widest a category label of the Pareto chart gets (CJK characters count twice); the
#: table next to it has the full title.
CHART_LABEL_WIDTH = 24
#: The first column of the top negative themes, right of the Pareto table: both tables share
#: the header row that each printed page repeats.
THEMES_COLUMN = 11


def write_root_causes(ws: Worksheet, report: ReportContext) -> None:
    """Fill the Root causes sheet: the Pareto table, the top negative themes beside it on the
    same header row, and the Pareto chart below them."""
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
        _("Label in the chart"),
    ]
    write_header(ws, 2, headers)
    for offset, item in enumerate(pareto):
        row = 3 + offset
        ws.cell(row=row, column=1, value=offset + 1)
        ws.cell(row=row, column=2, value=text(item.title))
        ws.cell(row=row, column=3, value=str(label(item.status)))
        ws.cell(row=row, column=4, value=item.feedback).number_format = "#,##0"
        ws.cell(row=row, column=5, value=item.weight).number_format = "#,##0"
        ws.cell(row=row, column=6, value=item.share / 100).number_format = "0.0%"
        ws.cell(row=row, column=7, value=item.cumulative / 100).number_format = "0.0%"
        ws.cell(row=row, column=8, value=_("yes") if item.vital else None)
        chart_label = f"{offset + 1}. {shortened(item.title, CHART_LABEL_WIDTH)}"
        ws.cell(row=row, column=9, value=text(chart_label))
    notes = ["A1", f"{get_column_letter(THEMES_COLUMN)}1"]
    if not pareto:
        ws.cell(row=3, column=1, value=_("No feedback linked to a root cause in the period."))
        notes.append("A3")
    themes_rows = _write_themes(ws, report)
    if not themes_rows:
        notes.append(f"{get_column_letter(THEMES_COLUMN)}3")
    fit_columns(ws, [2], notes=notes)
    if pareto:
        below = 3 + max(len(pareto), themes_rows, 1) + 1
        place_charts(ws, [_pareto_chart(ws, len(pareto))], below, 2)
    set_up_printing(ws, 2, period=report.period)


def _write_themes(ws: Worksheet, report: ReportContext) -> int:
    """The top negative themes from column :data:`THEMES_COLUMN`; returns their number."""
    first = THEMES_COLUMN
    ws.cell(row=1, column=first, value=_("Top negative themes")).font = TITLE_FONT
    headers = [_("Rank"), _("Theme"), _("Responses"), _("Negative"), _("Negative share")]
    write_header(ws, 2, headers, column=first)
    themes = top_negative_themes(report.scope, limit=10, examples=0)
    for offset, theme in enumerate(themes):
        row = 3 + offset
        ws.cell(row=row, column=first, value=offset + 1)
        ws.cell(row=row, column=first + 1, value=text(theme.keyword))
        ws.cell(row=row, column=first + 2, value=theme.count).number_format = "#,##0"
        ws.cell(row=row, column=first + 3, value=theme.negative_count).number_format = "#,##0"
        share = ws.cell(row=row, column=first + 4, value=theme.negative_share)
        share.number_format = "0.0%"
    if not themes:
        ws.cell(row=3, column=first, value=_("No negative themes in the period."))
    return len(themes)


def _pareto_chart(ws: Worksheet, rows: int) -> BarChart:
    bars = BarChart()
    bars.type = "col"
    bars.title = _("Pareto of root causes")
    bars.y_axis.title = _("Weight (severity)")
    bars.add_data(Reference(ws, min_col=5, min_row=2, max_row=2 + rows), titles_from_data=True)
    # The short labels ("1. Short-staffed eve…"), slanted, in a small font: long titles
    # would overlap or be dropped by Excel.
    bars.set_categories(Reference(ws, min_col=9, min_row=3, max_row=2 + rows))
    bars.x_axis.txPr = _axis_text(rotation=-45)
    line = LineChart()
    line.add_data(Reference(ws, min_col=7, min_row=2, max_row=2 + rows), titles_from_data=True)
    line.y_axis.axId = 200
    line.y_axis.title = _("Cumulative share")
    line.y_axis.number_format = "0%"
    line.y_axis.scaling.min = 0
    line.y_axis.scaling.max = 1
    line.y_axis.crosses = "max"
    bars += line
    bars.legend.position = "b"
    bars.height, bars.width = 11, 24
    show_axes(bars, line)
    return bars


def _axis_text(rotation: int, size: int = 8) -> RichText:
    """Axis label text turned by ``rotation`` degrees, ``size`` points."""
    return RichText(
        bodyPr=RichTextProperties(rot=rotation * 60_000, vert="horz"),
        p=[
            Paragraph(
                pPr=ParagraphProperties(defRPr=CharacterProperties(sz=size * 100)),
                endParaRPr=CharacterProperties(sz=size * 100),
            )
        ],
    )
