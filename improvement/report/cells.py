"""What every sheet of the report shares: the report's context, cell styles and formats, and
the helpers that write headers, widths, KPI values, typed text and local times."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from analysis.metrics import Scope
from analysis.metrics.catalog import KPI_LABELS, kpi_unit
from survey_app.csvexport import neutralise

from . import stream

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


@dataclass(frozen=True)
class ReportContext:
    """What the sheets read besides the database: the report's scope, its time zone, today
    in that zone and the minimum sample (``METRICS_MIN_SAMPLE``)."""

    scope: Scope
    zone: ZoneInfo
    today: date
    min_sample: int

    @classmethod
    def of(cls, scope: Scope) -> ReportContext:
        """The context of a report on ``scope``, now, in the current app."""
        zone = scope.zone
        return cls(
            scope=scope,
            zone=zone,
            today=datetime.now(zone).date(),
            min_sample=int(current_app.config.get("METRICS_MIN_SAMPLE", 30)),
        )


def text(value: Any) -> Any:
    """A cell value from text people typed: neutralised against formula injection, with
    characters a worksheet cannot hold removed. None stays None."""
    if value is None:
        return None
    return neutralise(stream.clean_text(str(value)))


def kpi_label(name: str) -> str:
    """The KPI's name as people read it, in the report's language."""
    return str(KPI_LABELS.get(name, name))


def local_time(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A UTC instant as a naive local datetime (Excel has no time zones)."""
    if moment is None:
        return None
    return moment.astimezone(zone).replace(tzinfo=None)


def write_header(ws: Worksheet, row: int, headers: Sequence[str], column: int = 1) -> None:
    """Column headers from ``column`` on: bold, shaded, wrapped."""
    for offset, title in enumerate(headers):
        cell = ws.cell(row=row, column=column + offset, value=title)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")


def set_widths(ws: Worksheet, widths: Sequence[float], column: int = 1) -> None:
    """Column widths from ``column`` on."""
    for offset, width in enumerate(widths):
        ws.column_dimensions[get_column_letter(column + offset)].width = width


def kpi_cell(ws: Worksheet, row: int, column: int, name: str, value: float | None) -> None:
    """A value of KPI ``name``, with the number format of its unit."""
    cell = ws.cell(row=row, column=column, value=value)
    cell.number_format = UNIT_FORMATS[kpi_unit(name)]


def show_axes(*charts: Any) -> None:
    """Draw the axes: openpyxl 3.1 leaves ``delete`` unset, which Excel reads as hidden."""
    for chart in charts:
        chart.x_axis.delete = False
        chart.y_axis.delete = False
