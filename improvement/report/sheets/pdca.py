"""The PDCA sheet: every cycle whose scope overlaps the report's filters and that was open at
some time in the period: stage, owner, KPI baseline / target / value over the report period,
and the Check (verdict, test, difference, CI, p)."""

from __future__ import annotations

from flask_babel import gettext as _
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from analysis.metrics import compute
from improvement.pdca.common import scope_for
from improvement.pdca.labels import ENUM_LABELS
from improvement.pdca.lists import filters_overlap
from improvement.pdca.models import ActionItem, PdcaCycle
from survey_app.extensions import db

from ..cells import (
    DATE_FORMAT,
    DATETIME_FORMAT,
    ReportContext,
    change_cell,
    kpi_cell,
    kpi_label,
    local_time,
    text,
    write_header,
)
from ..layout import fit_columns, set_up_printing


def report_cycles(report: ReportContext) -> list[PdcaCycle]:
    """Cycles open at some time in the period whose scope overlaps the report's filters
    (each dimension both restrict shares a value), oldest first."""
    begin, end = report.scope.bounds
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
    wanted = report.scope.to_json()["filters"]
    return [
        cycle
        for cycle in found
        if (cycle.closed_at is None or cycle.closed_at >= begin)
        and filters_overlap(cycle.scope or {}, wanted)
    ]


def write_pdca(ws: Worksheet, report: ReportContext, cycles: list[PdcaCycle]) -> None:
    """Fill the PDCA sheet with ``cycles`` (:func:`report_cycles`)."""
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
    write_header(ws, 1, headers)
    for offset, cycle in enumerate(cycles):
        row = 2 + offset
        latest = compute(
            scope_for(cycle.scope, report.scope.start, report.scope.end), metrics=(cycle.kpi,)
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
        kpi_cell(ws, row, 6, cycle.kpi, cycle.baseline_value)
        ws.cell(row=row, column=7, value=cycle.baseline_n).number_format = "#,##0"
        for column, day in ((8, cycle.baseline_start), (9, cycle.baseline_end)):
            ws.cell(row=row, column=column, value=day).number_format = DATE_FORMAT
        kpi_cell(ws, row, 10, cycle.kpi, cycle.target_value)
        ws.cell(row=row, column=11, value=cycle.target_date).number_format = DATE_FORMAT
        kpi_cell(ws, row, 12, cycle.kpi, latest.value)
        ws.cell(row=row, column=13, value=latest.n).number_format = "#,##0"
        if check is not None:
            ws.cell(row=row, column=14, value=str(ENUM_LABELS[check.verdict]))
            ws.cell(row=row, column=15, value=str(ENUM_LABELS[check.comparison]))
            ws.cell(row=row, column=16, value=check.test)
            # The difference and its interval are changes: signed, in points or minutes.
            change_cell(ws, row, 17, cycle.kpi, check.difference)
            change_cell(ws, row, 18, cycle.kpi, check.ci_low)
            change_cell(ws, row, 19, cycle.kpi, check.ci_high)
            ws.cell(row=row, column=20, value=check.p_value).number_format = "0.0000"
            measured_at = local_time(check.measured_at, report.zone)
            measured = ws.cell(row=row, column=21, value=measured_at)
            measured.number_format = DATETIME_FORMAT
        if cycle.act_decision is not None:
            ws.cell(row=row, column=22, value=str(ENUM_LABELS[cycle.act_decision]))
        overdue = sum(1 for action in cycle.actions if action.overdue(report.today))
        ws.cell(row=row, column=23, value=overdue)
    if cycles:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{1 + len(cycles)}"
    else:
        ws.cell(row=2, column=1, value=_("No PDCA cycle in scope in the period."))
    fit_columns(ws, [1], notes=[] if cycles else ["A2"])
    set_up_printing(ws, 1, period=report.period, freeze_column=3)
