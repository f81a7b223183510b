"""What every sheet of the report shares: the report's context, cell styles and formats, and
the helpers that write headers, widths, KPI values and their changes, typed text and local
times. How the sheets are laid out and printed is :mod:`.layout`'s."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.worksheet import Worksheet

from analysis.metrics import Scope
from analysis.metrics.catalog import KPI_LABELS, kpi_unit
from survey_app.csvexport import neutralise

from . import stream

#: Excel number formats by KPI unit; percentages and NPS are kept 0–100, as the metrics give
#: them; durations (seconds in the metrics) are written as Excel times, shown in hours and
#: minutes (:func:`kpi_value`).
UNIT_FORMATS = {
    "%": '0.0"%"',
    "nps": "0.0",
    "score": "0.00",
    "contacts": "0.00",
    "seconds": "[h]:mm",
}
SECONDS_PER_DAY = 86_400
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
#: The body font (openpyxl's default), named: a font without a name is drawn in the
#: application's own default (a serif one in LibreOffice).
FONT_NAME = "Calibri"
HEADER_FONT = Font(name=FONT_NAME, bold=True)
HEADER_FILL = PatternFill("solid", start_color="DDEBF7", end_color="DDEBF7")
HEADER_ALIGNMENT = Alignment(wrap_text=True, vertical="center")
TITLE_FONT = Font(name=FONT_NAME, bold=True, size=14)


@dataclass(frozen=True)
class ReportContext:
    """What the sheets read besides the database: the report's scope, its time zone, today
    in that zone and the minimum sample (``METRICS_MIN_SAMPLE``)."""

    scope: Scope
    zone: ZoneInfo
    today: date
    min_sample: int

    @property
    def period(self) -> str:
        """The report's period, ``2025-09-01 – 2025-09-30`` (page headers)."""
        return f"{self.scope.start.isoformat()} – {self.scope.end.isoformat()}"

    @classmethod
    def of(cls, scope: Scope) -> ReportContext:
        """The context of a report on ``scope``, now, in the current app."""
        zone = scope.zone
        return cls(
            scope=scope,
            zone=zone,
            today=datetime.now(zone).date(),
            min_sample=int(current_app.config["METRICS_MIN_SAMPLE"]),
        )


def text(value: Any) -> Any:
    """A cell value from text people typed: neutralised against formula injection, with
    characters a worksheet cannot hold removed. None stays None."""
    if value is None:
        return None
    return neutralise(stream.clean_text(str(value)))


#: A unit in brackets at the end of a KPI label: "(s)", "（秒）".
_UNIT_SUFFIX = re.compile(r"\s*[(（][^()（）]*[)）]\s*$")


def kpi_label(name: str) -> str:
    """The KPI's name as people read it, in the report's language; a duration's says it is
    shown in hours and minutes (the catalogue's says seconds, as the metrics count)."""
    label = str(KPI_LABELS.get(name, name))
    if name in KPI_LABELS and kpi_unit(name) == "seconds":
        return _("%(kpi)s (h:mm)", kpi=_UNIT_SUFFIX.sub("", label))
    return label


def local_time(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A UTC instant as a naive local datetime (Excel has no time zones)."""
    if moment is None:
        return None
    return moment.astimezone(zone).replace(tzinfo=None)


def write_header(ws: Worksheet, row: int, headers: Sequence[str], column: int = 1) -> None:
    """Column headers from ``column`` on: bold, shaded, wrapped, centred vertically."""
    for offset, title in enumerate(headers):
        cell = ws.cell(row=row, column=column + offset, value=title)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = HEADER_ALIGNMENT


def kpi_value(name: str, value: float | None) -> float | None:
    """A value of KPI ``name`` as the report stores it: durations as Excel times (days),
    every other unit as the metrics give it."""
    if value is not None and kpi_unit(name) == "seconds":
        return value / SECONDS_PER_DAY
    return value


def kpi_cell(ws: Worksheet, row: int, column: int, name: str, value: float | None) -> None:
    """A value of KPI ``name`` (:func:`kpi_value`), with the number format of its unit."""
    cell = ws.cell(row=row, column=column, value=kpi_value(name, value))
    cell.number_format = UNIT_FORMATS[kpi_unit(name)]


def _signed(number: str, unit: str = "") -> str:
    """A number format with an explicit sign: ``+1.0 u``, ``-1.0 u``, ``0.0 u``."""
    suffix = f'" {unit}"' if unit else ""
    zero = number.replace("#,##", "")
    return f"+{number}{suffix};-{number}{suffix};{zero}{suffix}"


def change_format(name: str) -> str:
    """The number format of a change (a difference) of KPI ``name``: percentages in
    percentage points (``+2.3 pts``), NPS and scores signed, durations in signed whole
    minutes (a negative Excel time would show as ``###``)."""
    unit = kpi_unit(name)
    if unit == "%":
        return _signed("0.0", _("pts").replace('"', ""))
    if unit == "seconds":
        return _signed("#,##0", _("min").replace('"', ""))
    return _signed(UNIT_FORMATS[unit])


def change_value(name: str, value: float | None) -> float | None:
    """A change of KPI ``name`` as the report stores it: durations in minutes."""
    if value is not None and kpi_unit(name) == "seconds":
        return value / 60
    return value


def change_cell(ws: Worksheet, row: int, column: int, name: str, value: float | None) -> None:
    """A change (a difference) of KPI ``name``, with :func:`change_format`."""
    cell = ws.cell(row=row, column=column, value=change_value(name, value))
    cell.number_format = change_format(name)


def show_axes(*charts: Any) -> None:
    """Draw the axes: openpyxl 3.1 leaves ``delete`` unset, which Excel reads as hidden."""
    for chart in charts:
        chart.x_axis.delete = False
        chart.y_axis.delete = False
