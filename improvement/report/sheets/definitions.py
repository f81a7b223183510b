"""The Definitions sheet: how each KPI is computed (the docstrings of
:mod:`analysis.metrics.definitions`)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from openpyxl.worksheet.worksheet import Worksheet

from analysis.metrics import ALL_KPIS, DEFINITIONS_VERSION
from analysis.metrics import definitions as kpi_definitions
from analysis.metrics.catalog import kpi_unit

from ..cells import TITLE_FONT, ReportContext, kpi_label, write_header
from ..layout import fit_columns, set_up_printing

#: The Unit column: what each KPI's cells show in this workbook (durations as h:mm).
UNIT_NAMES = {
    "%": _l("percent (0–100)"),
    "nps": _l("NPS points (−100 to 100)"),
    "score": _l("average score"),
    "contacts": _l("contacts per ticket"),
    "seconds": _l("hours:minutes (h:mm)"),
}


def write_definitions(ws: Worksheet, report: ReportContext) -> None:
    """Fill the Definitions sheet."""
    ws["A1"] = _("How each KPI is computed")
    ws["A1"].font = TITLE_FONT
    ws["A2"] = _("Metric definitions version %(version)s", version=DEFINITIONS_VERSION)
    ws["A3"] = _(
        "Skipped questions count in neither numerator nor denominator; a KPI resting on "
        "fewer than %(n)s answers is marked low-confidence.",
        n=report.min_sample,
    )
    write_header(ws, 5, [_("KPI"), _("Code"), _("Unit"), _("How it is computed")])
    for offset, name in enumerate(ALL_KPIS):
        row = 6 + offset
        ws.cell(row=row, column=1, value=kpi_label(name))
        ws.cell(row=row, column=2, value=name)
        ws.cell(row=row, column=3, value=str(UNIT_NAMES[kpi_unit(name)]))
        ws.cell(row=row, column=4, value=formula_of(name))
    # Each formula wraps in its column (fit_columns): a row per KPI, as tall as it needs.
    fit_columns(ws, [5], notes=["A1", "A2", "A3"])
    set_up_printing(ws, 5, period=report.period)


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
