"""The Actions sheet: every action item of the cycles in scope: owner, deadline, status, days
overdue (red by conditional formatting), autofilter, frozen header."""

from __future__ import annotations

from datetime import date

from flask_babel import gettext as _
from openpyxl.formatting.rule import CellIsRule
from openpyxl.worksheet.worksheet import Worksheet

from improvement.pdca.labels import ENUM_LABELS
from improvement.pdca.models import PENDING_ACTION_STATUSES, ActionItem, PdcaCycle

from ..cells import (
    DATE_FORMAT,
    DATETIME_FORMAT,
    OVERDUE_FILL,
    ReportContext,
    local_time,
    text,
    write_header,
)
from ..layout import fit_columns, set_up_printing


def write_actions(ws: Worksheet, report: ReportContext, cycles: list[PdcaCycle]) -> None:
    """Fill the Actions sheet with the action items of ``cycles``, cycle by cycle."""
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
    write_header(ws, 1, headers)
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
            done = ws.cell(row=row, column=7, value=local_time(action.done_at, report.zone))
            done.number_format = DATETIME_FORMAT
            overdue = ws.cell(row=row, column=8, value=days_overdue(action, report.today))
            overdue.number_format = "#,##0"
    last = max(row, 2)
    if row == 1:
        ws.cell(row=2, column=1, value=_("No action items in scope."))
    ws.auto_filter.ref = f"A1:H{last}"
    ws.conditional_formatting.add(
        f"H2:H{last}", CellIsRule(operator="greaterThan", formula=["0"], fill=OVERDUE_FILL)
    )
    fit_columns(ws, [1], notes=["A2"] if row == 1 else [])
    set_up_printing(ws, 1, period=report.period)


def days_overdue(action: ActionItem, today: date) -> int:
    """Whole days past the deadline of a pending action (0 when done, cancelled or not due)."""
    if action.status in PENDING_ACTION_STATUSES and action.deadline < today:
        return (today - action.deadline).days
    return 0
