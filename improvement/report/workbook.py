"""The Excel improvement report: one workbook that tells the story of a period.

Sheets, in order:

* **Summary** — every KPI of :data:`analysis.metrics.ALL_KPIS` over the period
  and over the previous period of equal length (:meth:`Scope.previous`), the
  change, the target and status colour from :func:`analysis.targets.status_for`,
  n, the low-confidence mark and the 95 % CI; the definitions version. Printed
  landscape, one page wide.
* **Trends** — the overview KPIs per ISO week and per calendar month
  (:func:`analysis.metrics.compute` with ``grain``), with native line charts
  (the target drawn as a second series) and a column chart of NPS answers.
* **Root causes** — the Pareto of :func:`improvement.root_causes.pareto.root_cause_pareto`
  over the cases opened in the period (a column chart with the cumulative share
  as a line on a second axis) and the dashboards' top negative themes
  (:func:`analysis.dashboards.queries.top_negative_themes`).
* **PDCA** — every cycle whose scope overlaps the report's filters and that was
  open at some time in the period: stage, owner, KPI baseline / target / value
  over the report period, and the Check (verdict, test, difference, CI, p).
* **Actions** — every action item of those cycles: owner, deadline, status,
  days overdue (red by conditional formatting), autofilter, frozen header.
* **Feedback** — every response in scope with its scores, sentiment, themes and
  ticket fields, streamed (:mod:`.stream`) so memory stays flat.
* **Definitions** — how each KPI is computed (the docstrings of
  :mod:`analysis.metrics.definitions`).

Every number comes from the modules named above: no KPI formula is repeated
here. Text that people typed (titles, names, comments, filters) goes through
:func:`survey_app.csvexport.neutralise`, so no cell starts with a
formula character, and openpyxl never writes it as a formula.
"""

from __future__ import annotations

import inspect
import io
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from analysis.dashboards.queries import response_conditions, top_negative_themes
from analysis.metrics import ALL_KPIS, DEFINITIONS_VERSION, OVERVIEW_KPIS, Kpi, Scope, compute
from analysis.metrics import definitions as kpi_definitions
from analysis.targets import status_for
from analysis.targets.labels import KPI_LABELS, LEVEL_LABELS, kpi_unit
from survey_app.csvexport import neutralise
from survey_app.extensions import db
from survey_app.labels import label
from survey_app.models import Ticket
from survey_app.surveys.models import SurveyResponse
from survey_app.types import utcnow

from ..pdca.common import scope_for
from ..pdca.labels import ENUM_LABELS
from ..pdca.models import PENDING_ACTION_STATUSES, ActionItem, PdcaCycle
from ..root_causes.pareto import root_cause_pareto
from . import stream
from .languages import LANGUAGES

#: Report languages (``--lang``).

#: Excel number formats by KPI unit; percentages and NPS are kept 0–100, as the metrics give them.
UNIT_FORMATS = {
    "%": '0.0"%"',
    "nps": "0.0",
    "score": "0.00",
    "contacts": "0.00",
    "seconds": '#,##0" s"',
}
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
#: Status colours (cell fills) of the target levels.
LEVEL_FILLS = {
    "ok": "C6EFCE",
    "yellow": "FFEB9C",
    "orange": "F8CBAD",
    "red": "FFC7CE",
    "low_confidence": "E7E6E6",
}
OVERDUE_FILL = PatternFill("solid", start_color="FFC7CE", end_color="FFC7CE")
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", start_color="DDEBF7", end_color="DDEBF7")
TITLE_FONT = Font(bold=True, size=14)
#: The Excel serial of 1970-01-01 (1900 date system).
UNIX_EPOCH_SERIAL = 25569.0
#: The KPIs drawn with their target in the trend charts.
CHARTED_KPIS = ("nps", "csat_overall_percent")


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote: the sheet names and the number of feedback rows."""

    sheets: list[str]
    feedback_rows: int


def report_filename(scope: Scope) -> str:
    """``closedloop-report-<from>-<to>.xlsx``."""
    return f"closedloop-report-{scope.start.isoformat()}-{scope.end.isoformat()}.xlsx"


def write_report(scope: Scope, out: IO[bytes], *, language: str = "en") -> ReportResult:
    """Write the improvement report of ``scope`` as an .xlsx package to ``out`` (binary).

    Headers and labels are in ``language`` (``en`` or ``zh_Hans``); numbers are
    numbers with formats, dates real Excel dates in the scope's time zone.
    Reads only: nothing in the database changes. Refuses (ValueError) a
    language not in :data:`LANGUAGES`.
    """
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    with force_locale(language):
        builder = _ReportBuilder(scope)
        workbook = builder.build()
        feedback_title = builder.feedback_title
        sheets = list(workbook.sheetnames)
        # openpyxl keeps its workbook in memory; it is small without the feedback rows.
        with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as package:
            workbook.save(package)
            package.seek(0)
            rows = stream.replace_sheet(package, out, feedback_title, builder.write_feedback)
    return ReportResult(sheets, int(rows))


def report_bytes(scope: Scope, *, language: str = "en") -> bytes:
    """:func:`write_report` into memory (tests and small periods)."""
    buffer = io.BytesIO()
    write_report(scope, buffer, language=language)
    return buffer.getvalue()


# --- helpers ---------------------------------------------------------------------------------


def text(value: Any) -> Any:
    """A cell value from text people typed: neutralised against formula injection, with
    characters a worksheet cannot hold removed. None stays None."""
    if value is None:
        return None
    return neutralise(stream.clean_text(str(value)))


def kpi_label(name: str) -> str:
    return str(KPI_LABELS.get(name, name))


def _local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A UTC instant as a naive local datetime (Excel has no time zones)."""
    if moment is None:
        return None
    return moment.astimezone(zone).replace(tzinfo=None)


def _header(ws: Worksheet, row: int, headers: Sequence[str], column: int = 1) -> None:
    for offset, title in enumerate(headers):
        cell = ws.cell(row=row, column=column + offset, value=title)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")


def _widths(ws: Worksheet, widths: Sequence[float], column: int = 1) -> None:
    for offset, width in enumerate(widths):
        ws.column_dimensions[get_column_letter(column + offset)].width = width


def _kpi_cell(ws: Worksheet, row: int, column: int, name: str, value: float | None) -> None:
    cell = ws.cell(row=row, column=column, value=value)
    cell.number_format = UNIT_FORMATS[kpi_unit(name)]


def _show_axes(*charts: Any) -> None:
    """Draw the axes: openpyxl 3.1 leaves ``delete`` unset, which Excel reads as hidden."""
    for chart in charts:
        chart.x_axis.delete = False
        chart.y_axis.delete = False


def _filters_text(scope: Scope) -> str:
    filters = scope.to_json()["filters"]
    if not filters:
        return _("none (everything)")
    parts = []
    for name, values in filters.items():
        shown = values if isinstance(values, list) else [values]
        parts.append(f"{name}: {', '.join(str(v) for v in shown)}")
    return "; ".join(parts)


def _docstring_text(function: Callable[..., Any]) -> str:
    return re.sub(r"\s+", " ", inspect.getdoc(function) or "").replace("``", "").strip()


def formula_of(name: str) -> str:
    """How KPI ``name`` is computed: the docstring of its function in
    :mod:`analysis.metrics.definitions`."""
    d = kpi_definitions
    if name.startswith("csat_"):
        function: Callable[..., Any] = (
            d.csat_average if name.endswith("_average") else d.csat_percent
        )
    elif name.startswith(d.DURATIONS):
        function = d.duration_kpis
    else:
        function = getattr(d, name)
    return _docstring_text(function)


# --- the builder -----------------------------------------------------------------------------


class _ReportBuilder:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.zone = scope.zone
        self.today = datetime.now(self.zone).date()
        self.min_sample = int(current_app.config.get("METRICS_MIN_SAMPLE", 30))
        self.workbook = Workbook()
        self.feedback_title = ""
        self.targets: dict[str, float | None] = {}
        self._feedback_styles: dict[str, int] = {}

    def build(self) -> Workbook:
        summary = self.workbook.active
        assert summary is not None
        self.summary(summary)
        self.trends(self.workbook.create_sheet(_("Trends")))
        self.root_causes(self.workbook.create_sheet(_("Root causes")))
        cycles = self.cycles()
        self.pdca(self.workbook.create_sheet(_("PDCA")), cycles)
        self.actions(self.workbook.create_sheet(_("Actions")), cycles)
        self.feedback_placeholder(self.workbook.create_sheet(_("Feedback")))
        self.definitions(self.workbook.create_sheet(_("Definitions")))
        return self.workbook

    # --- Summary -----------------------------------------------------------------------------

    def summary(self, ws: Worksheet) -> None:
        ws.title = _("Summary")
        scope, previous = self.scope, self.scope.previous()
        now = compute(scope).overall
        before = compute(previous).overall
        ws["A1"] = _("ClosedLoop improvement report")
        ws["A1"].font = TITLE_FONT
        facts: list[tuple[str, Any, Any]] = [
            (_("Period"), scope.start, scope.end),
            (_("Previous period"), previous.start, previous.end),
            (_("Time zone"), scope.timezone, None),
            (_("Filters"), text(_filters_text(scope)), None),
            (_("Metric definitions version"), DEFINITIONS_VERSION, None),
            (_("Minimum sample"), self.min_sample, None),
            (_("Generated"), _local(utcnow(), self.zone), None),
        ]
        for offset, (name, first, second) in enumerate(facts):
            row = 2 + offset
            ws.cell(row=row, column=1, value=name).font = HEADER_FONT
            cell = ws.cell(row=row, column=2, value=first)
            if isinstance(first, datetime):
                cell.number_format = DATETIME_FORMAT
            elif isinstance(first, date):
                cell.number_format = DATE_FORMAT
                end = ws.cell(row=row, column=3, value=second)
                end.number_format = DATE_FORMAT
        headers = [
            _("KPI"),
            _("Value"),
            _("Previous period"),
            _("Change"),
            _("Target"),
            _("Status"),
            _("n"),
            _("Low confidence"),
            _("95% CI low"),
            _("95% CI high"),
            _("Previous n"),
            _("Code"),
        ]
        top = 11
        _header(ws, top - 1, headers)
        for offset, name in enumerate(ALL_KPIS):
            row = top + offset
            kpi, old = now[name], before[name]
            status = status_for(name, kpi, scope)
            self.targets[name] = status.target
            change = None if kpi.value is None or old.value is None else kpi.value - old.value
            ws.cell(row=row, column=1, value=kpi_label(name))
            for column, value in ((2, kpi.value), (3, old.value), (4, change)):
                _kpi_cell(ws, row, column, name, value)
            _kpi_cell(ws, row, 5, name, status.target)
            level = ws.cell(row=row, column=6, value=str(LEVEL_LABELS.get(status.level, "")))
            if status.level in LEVEL_FILLS:
                colour = LEVEL_FILLS[status.level]
                level.fill = PatternFill("solid", start_color=colour, end_color=colour)
            ws.cell(row=row, column=7, value=kpi.n).number_format = "#,##0"
            ws.cell(row=row, column=8, value="*" if kpi.low_confidence else None)
            ci = kpi.ci or (None, None)
            _kpi_cell(ws, row, 9, name, ci[0])
            _kpi_cell(ws, row, 10, name, ci[1])
            ws.cell(row=row, column=11, value=old.n).number_format = "#,##0"
            ws.cell(row=row, column=12, value=name)
        note = top + len(ALL_KPIS) + 1
        ws.cell(
            row=note,
            column=1,
            value=_(
                "* fewer than %(n)s answers: low confidence, not graded against the target.",
                n=self.min_sample,
            ),
        )
        ws.cell(
            row=note + 1,
            column=1,
            value=_(
                "Change = value − previous value, in the KPI's unit. Percentages and NPS are "
                "shown 0–100; times in seconds."
            ),
        )
        _widths(ws, [40, 12, 14, 12, 12, 16, 9, 10, 12, 12, 11, 30])
        ws.freeze_panes = ws.cell(row=top, column=2)
        ws.print_title_rows = f"{top - 1}:{top - 1}"
        ws.page_setup.orientation = "landscape"
        ws.page_setup.paperSize = ws.PAPERSIZE_A4
        ws.page_setup.fitToWidth = 1
        ws.page_setup.fitToHeight = 0
        ws.sheet_properties.pageSetUpPr.fitToPage = True

    # --- Trends ------------------------------------------------------------------------------

    def trends(self, ws: Worksheet) -> None:
        weekly_top = 2
        ws["A1"] = _("Weekly (weeks start on Monday)")
        ws["A1"].font = TITLE_FONT
        weekly_rows = self._trend_table(ws, weekly_top, "week", _("Week starting"))
        monthly_title = weekly_top + weekly_rows + 3
        ws.cell(row=monthly_title, column=1, value=_("Monthly")).font = TITLE_FONT
        monthly_rows = self._trend_table(ws, monthly_title + 1, "month", _("Month"))
        widths = [14] + [11] * (2 * len(OVERVIEW_KPIS)) + [12] * len(CHARTED_KPIS)
        _widths(ws, widths)
        ws.freeze_panes = "B3"
        anchor_column = get_column_letter(len(widths) + 2)
        anchor_row = 1
        for top, rows, grain in (
            (weekly_top, weekly_rows, _("weekly")),
            (monthly_title + 1, monthly_rows, _("monthly")),
        ):
            if rows == 0:
                continue
            for name in CHARTED_KPIS:
                chart = self._line_chart(ws, top, rows, name, grain)
                ws.add_chart(chart, f"{anchor_column}{anchor_row}")
                anchor_row += 16
            ws.add_chart(self._answers_chart(ws, top, rows, grain), f"{anchor_column}{anchor_row}")
            anchor_row += 16

    def _trend_columns(self) -> dict[str, tuple[int, int]]:
        """KPI → (value column, n column) in a trend table."""
        return {name: (2 + 2 * i, 3 + 2 * i) for i, name in enumerate(OVERVIEW_KPIS)}

    def _target_column(self, name: str) -> int:
        return 2 + 2 * len(OVERVIEW_KPIS) + CHARTED_KPIS.index(name)

    def _trend_table(self, ws: Worksheet, top: int, grain: Any, period_header: str) -> int:
        result = compute(self.scope, grain=grain, metrics=OVERVIEW_KPIS)
        headers = [period_header]
        for name in OVERVIEW_KPIS:
            headers += [kpi_label(name), _("%(kpi)s n", kpi=kpi_label(name))]
        headers += [_("%(kpi)s target", kpi=kpi_label(name)) for name in CHARTED_KPIS]
        _header(ws, top, headers)
        columns = self._trend_columns()
        for offset, group in enumerate(result.groups):
            row = top + 1 + offset
            cell = ws.cell(row=row, column=1, value=date.fromisoformat(group.key["period"]))
            cell.number_format = DATE_FORMAT if grain == "week" else "yyyy-mm"
            for name, (value_column, n_column) in columns.items():
                kpi: Kpi = group.kpis[name]
                _kpi_cell(ws, row, value_column, name, kpi.value)
                ws.cell(row=row, column=n_column, value=kpi.n).number_format = "#,##0"
            for name in CHARTED_KPIS:
                target = self.targets.get(name)
                if target is not None:
                    _kpi_cell(ws, row, self._target_column(name), name, target)
        return len(result.groups)

    def _line_chart(self, ws: Worksheet, top: int, rows: int, name: str, grain: str) -> LineChart:
        chart = LineChart()
        chart.title = f"{kpi_label(name)} ({grain})"
        chart.y_axis.title = kpi_label(name)
        chart.y_axis.number_format = UNIT_FORMATS[kpi_unit(name)]
        chart.x_axis.number_format = DATE_FORMAT
        chart.height, chart.width = 7.5, 16
        _show_axes(chart)
        value_column = self._trend_columns()[name][0]
        data = Reference(ws, min_col=value_column, min_row=top, max_row=top + rows)
        chart.add_data(data, titles_from_data=True)
        if self.targets.get(name) is not None:
            target_column = self._target_column(name)
            target = Reference(ws, min_col=target_column, min_row=top, max_row=top + rows)
            chart.add_data(target, titles_from_data=True)
            line = chart.series[-1]
            line.graphicalProperties.line.dashStyle = "dash"
            line.graphicalProperties.line.solidFill = "C00000"
            line.smooth = False
        chart.series[0].smooth = False
        chart.set_categories(Reference(ws, min_col=1, min_row=top + 1, max_row=top + rows))
        return chart

    def _answers_chart(self, ws: Worksheet, top: int, rows: int, grain: str) -> BarChart:
        chart = BarChart()
        chart.type = "col"
        chart.title = _("NPS answers (%(grain)s)", grain=grain)
        chart.height, chart.width = 7.5, 16
        _show_axes(chart)
        n_column = self._trend_columns()["nps"][1]
        chart.add_data(
            Reference(ws, min_col=n_column, min_row=top, max_row=top + rows),
            titles_from_data=True,
        )
        chart.set_categories(Reference(ws, min_col=1, min_row=top + 1, max_row=top + rows))
        chart.legend = None
        return chart

    # --- Root causes -------------------------------------------------------------------------

    def root_causes(self, ws: Worksheet) -> None:
        begin, end = self.scope.bounds
        # The report's team and channel filters apply to the cases' tickets too.
        pareto = root_cause_pareto(begin, end, teams=self.scope.team, channels=self.scope.channel)
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
        _header(ws, 2, headers)
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
            ws.add_chart(self._pareto_chart(ws, len(pareto)), "J2")
        themes_top = 3 + max(len(pareto), 1) + 2
        themes_top = max(themes_top, 20)
        ws.cell(row=themes_top, column=1, value=_("Top negative themes")).font = TITLE_FONT
        _header(
            ws,
            themes_top + 1,
            [_("Rank"), _("Theme"), _("Responses"), _("Negative"), _("Negative share")],
        )
        themes = top_negative_themes(self.scope, limit=10, examples=0)
        for offset, theme in enumerate(themes):
            row = themes_top + 2 + offset
            ws.cell(row=row, column=1, value=offset + 1)
            ws.cell(row=row, column=2, value=text(theme.keyword))
            ws.cell(row=row, column=3, value=theme.count)
            ws.cell(row=row, column=4, value=theme.negative_count)
            ws.cell(row=row, column=5, value=theme.negative_share).number_format = "0.0%"
        if not themes:
            ws.cell(row=themes_top + 2, column=1, value=_("No negative themes in the period."))
        _widths(ws, [8, 48, 14, 12, 12, 10, 14, 10])

    def _pareto_chart(self, ws: Worksheet, rows: int) -> BarChart:
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
        _show_axes(bars, line)
        return bars

    # --- PDCA --------------------------------------------------------------------------------

    def cycles(self) -> list[PdcaCycle]:
        """Cycles open at some time in the period whose scope overlaps the report's filters
        (each dimension both restrict shares a value), oldest first."""
        begin, end = self.scope.bounds
        found = db.session.scalars(
            select(PdcaCycle)
            .where(PdcaCycle.created_at < end)
            .options(
                selectinload(PdcaCycle.owner),
                selectinload(PdcaCycle.measurements),
                selectinload(PdcaCycle.actions).selectinload(ActionItem.owner),
            )
            .order_by(PdcaCycle.id)
        )
        wanted = self.scope.to_json()["filters"]
        return [
            cycle
            for cycle in found
            if (cycle.closed_at is None or cycle.closed_at >= begin)
            and _overlaps(cycle.scope or {}, wanted)
        ]

    def pdca(self, ws: Worksheet, cycles: list[PdcaCycle]) -> None:
        headers = [
            _("Cycle"),
            _("Title"),
            _("Stage"),
            _("Owner"),
            _("KPI"),
            _("Baseline"),
            _("Baseline n"),
            _("Baseline from"),
            _("Baseline to"),
            _("Target"),
            _("Target date"),
            _("Value in report period"),
            _("n in report period"),
            _("Check verdict"),
            _("Comparison"),
            _("Test"),
            _("Difference"),
            _("95% CI low"),
            _("95% CI high"),
            _("p-value"),
            _("Measured"),
            _("Act decision"),
            _("Open actions overdue"),
        ]
        _header(ws, 1, headers)
        for offset, cycle in enumerate(cycles):
            row = 2 + offset
            latest = compute(
                scope_for(cycle.scope, self.scope.start, self.scope.end), metrics=(cycle.kpi,)
            ).overall[cycle.kpi]
            check = next(
                (m for m in cycle.measurements if m.round == 0),
                cycle.measurements[0] if cycle.measurements else None,
            )
            ws.cell(row=row, column=1, value=cycle.id)
            ws.cell(row=row, column=2, value=text(cycle.title))
            ws.cell(row=row, column=3, value=str(ENUM_LABELS[cycle.stage]))
            ws.cell(row=row, column=4, value=text(cycle.owner.name or cycle.owner.email))
            ws.cell(row=row, column=5, value=kpi_label(cycle.kpi))
            _kpi_cell(ws, row, 6, cycle.kpi, cycle.baseline_value)
            ws.cell(row=row, column=7, value=cycle.baseline_n)
            for column, day in ((8, cycle.baseline_start), (9, cycle.baseline_end)):
                ws.cell(row=row, column=column, value=day).number_format = DATE_FORMAT
            _kpi_cell(ws, row, 10, cycle.kpi, cycle.target_value)
            ws.cell(row=row, column=11, value=cycle.target_date).number_format = DATE_FORMAT
            _kpi_cell(ws, row, 12, cycle.kpi, latest.value)
            ws.cell(row=row, column=13, value=latest.n)
            if check is not None:
                ws.cell(row=row, column=14, value=str(ENUM_LABELS[check.verdict]))
                ws.cell(row=row, column=15, value=str(ENUM_LABELS[check.comparison]))
                ws.cell(row=row, column=16, value=check.test)
                _kpi_cell(ws, row, 17, cycle.kpi, check.difference)
                _kpi_cell(ws, row, 18, cycle.kpi, check.ci_low)
                _kpi_cell(ws, row, 19, cycle.kpi, check.ci_high)
                ws.cell(row=row, column=20, value=check.p_value).number_format = "0.0000"
                measured = ws.cell(row=row, column=21, value=_local(check.measured_at, self.zone))
                measured.number_format = DATETIME_FORMAT
            if cycle.act_decision is not None:
                ws.cell(row=row, column=22, value=str(ENUM_LABELS[cycle.act_decision]))
            overdue = sum(1 for action in cycle.actions if action.overdue(self.today))
            ws.cell(row=row, column=23, value=overdue)
        if cycles:
            ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{1 + len(cycles)}"
        else:
            ws.cell(row=2, column=1, value=_("No PDCA cycle in scope in the period."))
        ws.freeze_panes = "C2"
        _widths(ws, [8, 36, 10, 18, 28] + [12] * 18)

    def actions(self, ws: Worksheet, cycles: list[PdcaCycle]) -> None:
        headers = [
            _("Cycle"),
            _("Cycle title"),
            _("Action"),
            _("Owner"),
            _("Deadline"),
            _("Status"),
            _("Done"),
            _("Days overdue"),
        ]
        _header(ws, 1, headers)
        row = 1
        for cycle in cycles:
            for action in cycle.actions:
                row += 1
                ws.cell(row=row, column=1, value=cycle.id)
                ws.cell(row=row, column=2, value=text(cycle.title))
                ws.cell(row=row, column=3, value=text(action.title))
                ws.cell(row=row, column=4, value=text(action.owner.name or action.owner.email))
                ws.cell(row=row, column=5, value=action.deadline).number_format = DATE_FORMAT
                ws.cell(row=row, column=6, value=str(ENUM_LABELS[action.status]))
                done = ws.cell(row=row, column=7, value=_local(action.done_at, self.zone))
                done.number_format = DATETIME_FORMAT
                ws.cell(row=row, column=8, value=days_overdue(action, self.today))
        last = max(row, 2)
        if row == 1:
            ws.cell(row=2, column=1, value=_("No action items in scope."))
        ws.auto_filter.ref = f"A1:H{last}"
        ws.freeze_panes = "A2"
        ws.conditional_formatting.add(
            f"H2:H{last}", CellIsRule(operator="greaterThan", formula=["0"], fill=OVERDUE_FILL)
        )
        _widths(ws, [8, 32, 40, 18, 12, 14, 16, 12])

    # --- Feedback ----------------------------------------------------------------------------

    def _feedback_columns(self) -> list[tuple[str, str, float, str | None]]:
        """(header, kind, width, number format) of each feedback column, in order."""
        zone = self.scope.timezone
        return [
            (_("Response"), "number", 10, "0"),
            (_("Submitted (%(zone)s)", zone=zone), "datetime", 17, DATETIME_FORMAT),
            (_("Ticket"), "text", 14, None),
            (_("Subject"), "text", 30, None),
            (_("Team"), "text", 14, None),
            (_("Agent"), "text", 14, None),
            (_("Channel"), "text", 10, None),
            (_("Priority"), "text", 11, None),
            (_("Product line"), "text", 14, None),
            (_("Region"), "text", 10, None),
            (_("Customer tier"), "text", 10, None),
            (_("New customer"), "text", 8, None),
            (_("CSAT overall (1–5)"), "number", 9, "0"),
            (_("CSAT speed"), "number", 9, "0"),
            (_("CSAT professionalism"), "number", 9, "0"),
            (_("CSAT attitude"), "number", 9, "0"),
            (_("CSAT effectiveness"), "number", 9, "0"),
            (_("NPS (0–10)"), "number", 9, "0"),
            (_("CES (1–7)"), "number", 9, "0"),
            (_("Sentiment"), "text", 10, None),
            (_("Sentiment score"), "number", 9, "0.00"),
            (_("Themes"), "text", 24, None),
            (_("Problem type"), "text", 14, None),
            (_("Comment"), "text", 60, None),
            (_("Ticket created"), "datetime", 17, DATETIME_FORMAT),
            (_("Ticket closed"), "datetime", 17, DATETIME_FORMAT),
            (_("Contacts"), "number", 8, "0"),
            (_("Reopens"), "number", 8, "0"),
        ]

    def feedback_placeholder(self, ws: Worksheet) -> None:
        """An empty sheet whose part :mod:`.stream` replaces; its scratch cells only
        register the header and column styles in the package's style table."""
        self.feedback_title = ws.title
        header = ws.cell(row=1, column=1, value="")
        header.font = HEADER_FONT
        header.fill = HEADER_FILL
        self._feedback_styles["header"] = header.style_id
        self._columns: list[stream.Column] = []
        for index, (title, kind, width, number_format) in enumerate(self._feedback_columns()):
            style_id = 0
            if number_format is not None:
                cell = ws.cell(row=2, column=index + 1, value=0)
                cell.number_format = number_format
                style_id = cell.style_id
            self._columns.append(stream.Column(title, kind, width, style_id))

    def feedback_rows(self) -> Iterator[list[Any]]:
        """Every response in scope, oldest first, read in batches from a server-side cursor."""
        r, t = SurveyResponse, Ticket
        statement = (
            select(
                r.id,
                r.submitted_at,
                t.external_id,
                t.subject,
                r.team,
                r.agent,
                r.channel,
                r.priority,
                r.product_line,
                r.region,
                r.customer_tier,
                r.customer_is_new,
                r.csat_overall,
                r.csat_speed,
                r.csat_professionalism,
                r.csat_attitude,
                r.csat_effectiveness,
                r.nps,
                r.ces,
                r.sentiment_label,
                r.sentiment_score,
                r.keywords,
                r.problem_type,
                r.comment,
                t.created_at,
                t.closed_at,
                t.contact_count,
                t.reopen_count,
            )
            .join(t, t.id == r.ticket_id)
            .where(*response_conditions(self.scope))
            .order_by(r.submitted_at, r.id)
            .execution_options(yield_per=2000)
        )
        serial = _SerialClock(self.zone)
        labels: dict[Any, str] = {}

        def shown(member: Any) -> str | None:
            if member is None:
                return None
            if member not in labels:
                labels[member] = label(member)
            return labels[member]

        repeated: dict[Any, Any] = {}

        def safe(value: Any) -> Any:
            # Team, agent, region ... repeat: neutralise each distinct value once.
            if value is None:
                return None
            if value not in repeated:
                repeated[value] = neutralise(value)
            return repeated[value]

        yes, no = _("yes"), _("no")
        # Core execution on the session's connection: rows as tuples, no ORM row processing.
        for row in db.session.connection().execute(statement):
            yield [
                row[0],
                serial(row[1]),
                safe(row[2]),
                neutralise(row[3]),
                safe(row[4]),
                safe(row[5]),
                shown(row[6]),
                shown(row[7]),
                safe(row[8]),
                safe(row[9]),
                shown(row[10]),
                yes if row[11] else no,
                *row[12:19],
                shown(row[19]),
                row[20],
                safe(", ".join(row[21])) if row[21] else None,
                safe(row[22]),
                neutralise(row[23]) if row[23] else None,
                serial(row[24]),
                serial(row[25]),
                row[26],
                row[27],
            ]

    def write_feedback(self, out: IO[bytes]) -> int:
        return stream.write_sheet(
            out,
            self._columns,
            self.feedback_rows(),
            header_style_id=self._feedback_styles["header"],
        )

    # --- Definitions -------------------------------------------------------------------------

    def definitions(self, ws: Worksheet) -> None:
        ws["A1"] = _("How each KPI is computed")
        ws["A1"].font = TITLE_FONT
        ws["A2"] = _("Metric definitions version %(version)s", version=DEFINITIONS_VERSION)
        ws["A3"] = _(
            "Skipped questions count in neither numerator nor denominator; a KPI resting on "
            "fewer than %(n)s answers is marked low-confidence.",
            n=self.min_sample,
        )
        _header(ws, 5, [_("KPI"), _("Code"), _("Unit"), _("How it is computed")])
        for offset, name in enumerate(ALL_KPIS):
            row = 6 + offset
            ws.cell(row=row, column=1, value=kpi_label(name))
            ws.cell(row=row, column=2, value=name)
            ws.cell(row=row, column=3, value=kpi_unit(name))
            cell = ws.cell(row=row, column=4, value=formula_of(name))
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        ws.freeze_panes = "A6"
        _widths(ws, [38, 30, 10, 110])


class _SerialClock:
    """UTC instants → Excel serials of their local time in ``zone``, fast: the UTC offset
    is looked up once per quarter hour of UTC time (offsets change on quarter hours)."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.offsets: dict[int, float] = {}

    def __call__(self, moment: datetime | None) -> float | None:
        if moment is None:
            return None
        seconds = moment.timestamp()
        key = int(seconds // 900)
        offset = self.offsets.get(key)
        if offset is None:
            delta = moment.astimezone(self.zone).utcoffset()
            offset = self.offsets[key] = delta.total_seconds() if delta else 0.0
        return (seconds + offset) / 86400 + UNIX_EPOCH_SERIAL


def days_overdue(action: ActionItem, today: date) -> int:
    """Whole days past the deadline of a pending action (0 when done, cancelled or not due)."""
    if action.status in PENDING_ACTION_STATUSES and action.deadline < today:
        return (today - action.deadline).days
    return 0


def _overlaps(cycle_filters: dict[str, Any], wanted: dict[str, Any]) -> bool:
    for name, value in cycle_filters.items():
        if name not in wanted:
            continue
        mine = set(value) if isinstance(value, list) else {value}
        theirs = set(wanted[name]) if isinstance(wanted[name], list) else {wanted[name]}
        if not mine & theirs:
            return False
    return True
