"""The Summary sheet: every KPI of :data:`analysis.metrics.ALL_KPIS` over the period and over
the previous period of equal length (:meth:`Scope.previous`), the change, the target and
status colour from :func:`analysis.targets.status_for`, n, the low-confidence mark and the
95 % CI; the definitions version."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from openpyxl.styles import PatternFill
from openpyxl.worksheet.worksheet import Worksheet

from analysis.metrics import ALL_KPIS, DEFINITIONS_VERSION, Scope, compute
from analysis.targets import status_for
from analysis.targets.labels import LEVEL_LABELS
from survey_app.types import utcnow

from ..cells import (
    DATE_FORMAT,
    DATETIME_FORMAT,
    HEADER_FONT,
    LEVEL_FILLS,
    TITLE_FONT,
    ReportContext,
    change_cell,
    kpi_cell,
    kpi_label,
    local_time,
    text,
    write_header,
)
from ..layout import fit_columns, set_up_printing


def write_summary(ws: Worksheet, report: ReportContext) -> dict[str, float | None]:
    """Fill the Summary sheet; return each KPI's target (None where it has none)."""
    targets: dict[str, float | None] = {}
    ws.title = _("Summary")
    scope, previous = report.scope, report.scope.previous()
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
        (_("Minimum sample"), report.min_sample, None),
        (_("Generated"), local_time(utcnow(), report.zone), None),
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
    write_header(ws, top - 1, headers)
    for offset, name in enumerate(ALL_KPIS):
        row = top + offset
        kpi, old = now[name], before[name]
        status = status_for(name, kpi, scope)
        targets[name] = status.target
        change = None if kpi.value is None or old.value is None else kpi.value - old.value
        ws.cell(row=row, column=1, value=kpi_label(name))
        kpi_cell(ws, row, 2, name, kpi.value)
        kpi_cell(ws, row, 3, name, old.value)
        change_cell(ws, row, 4, name, change)
        kpi_cell(ws, row, 5, name, status.target)
        level = ws.cell(row=row, column=6, value=str(LEVEL_LABELS.get(status.level, "")))
        if status.level in LEVEL_FILLS:
            colour = LEVEL_FILLS[status.level]
            level.fill = PatternFill("solid", start_color=colour, end_color=colour)
        ws.cell(row=row, column=7, value=kpi.n).number_format = "#,##0"
        ws.cell(row=row, column=8, value="*" if kpi.low_confidence else None)
        ci = kpi.ci or (None, None)
        kpi_cell(ws, row, 9, name, ci[0])
        kpi_cell(ws, row, 10, name, ci[1])
        ws.cell(row=row, column=11, value=old.n).number_format = "#,##0"
        ws.cell(row=row, column=12, value=name)
    note = top + len(ALL_KPIS) + 1
    ws.cell(
        row=note,
        column=1,
        value=_(
            "* fewer than %(n)s answers: low confidence, not graded against the target.",
            n=report.min_sample,
        ),
    )
    ws.cell(
        row=note + 1,
        column=1,
        value=_(
            "Change = value − previous value. Percentages and NPS are shown 0–100, their "
            "changes in points (pts); times in hours and minutes (h:mm), their changes in "
            "minutes."
        ),
    )
    fit_columns(ws, [top - 1], notes=["A1", f"A{note}", f"A{note + 1}"])
    set_up_printing(ws, top - 1, period=report.period, freeze_column=2)
    return targets


def _filters_text(scope: Scope) -> str:
    filters = scope.to_json()["filters"]
    if not filters:
        return _("none (everything)")
    parts = []
    for name, values in filters.items():
        shown = values if isinstance(values, list) else [values]
        parts.append(f"{name}: {', '.join(str(v) for v in shown)}")
    return "; ".join(parts)
