"""The Excel improvement report: one workbook that tells the story of a period.

Sheets, in order:

* **Summary** — every KPI of :data:`analysis.metrics.ALL_KPIS` over the period
  and over the previous period of equal length (:meth:`Scope.previous`), the
  change, the target and status colour from :func:`analysis.targets.status_for`,
  n, the low-confidence mark and the 95 % CI; the definitions version.
* **Trends** — the overview KPIs per ISO week and per calendar month
  (:func:`analysis.metrics.compute` with ``grain``), with native line charts
  (the target drawn as a second series) and a column chart of NPS answers.
* **Root causes** — the Pareto of :func:`improvement.root_causes.pareto.root_cause_pareto`
  over the cases opened in the period (a column chart with the cumulative share
  as a line on a second axis) and, beside it, the dashboards' top negative themes
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

Each sheet is written by its module in :mod:`.sheets`; the styles and helpers they share
live in :mod:`.cells`, and every sheet is laid out and set up to print by :mod:`.layout`
(A4 landscape, one page wide, its header row repeated, widths from the shown values,
charts whole on a page). Every number comes from the modules named above: no KPI formula
is repeated here. Text that people typed (titles, names, comments, filters) goes through
:func:`survey_app.csvexport.neutralise`, so no cell starts with a
formula character, and openpyxl never writes it as a formula.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from typing import IO

from flask_babel import force_locale
from flask_babel import gettext as _
from openpyxl import Workbook

from analysis.metrics import Scope

from . import stream
from .cells import ReportContext
from .languages import LANGUAGES
from .sheets.actions import write_actions
from .sheets.definitions import write_definitions
from .sheets.feedback import FeedbackSheet
from .sheets.pdca import report_cycles, write_pdca
from .sheets.root_causes import write_root_causes
from .sheets.summary import write_summary
from .sheets.trends import write_trends


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
        workbook, feedback = build_workbook(ReportContext.of(scope))
        sheets = list(workbook.sheetnames)
        # openpyxl keeps its workbook in memory; it is small without the feedback rows.
        with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as package:
            workbook.save(package)
            package.seek(0)
            rows = stream.replace_sheet(package, out, feedback.title, feedback.write)
    return ReportResult(sheets, int(rows))


def report_bytes(scope: Scope, *, language: str = "en") -> bytes:
    """:func:`write_report` into memory (tests and small periods)."""
    buffer = io.BytesIO()
    write_report(scope, buffer, language=language)
    return buffer.getvalue()


def build_workbook(report: ReportContext) -> tuple[Workbook, FeedbackSheet]:
    """Every sheet in order; the Feedback sheet is an empty placeholder whose rows the
    returned :class:`FeedbackSheet` streams into the saved package."""
    workbook = Workbook()
    summary = workbook.active
    assert summary is not None
    targets = write_summary(summary, report)
    write_trends(workbook.create_sheet(_("Trends")), report, targets)
    write_root_causes(workbook.create_sheet(_("Root causes")), report)
    cycles = report_cycles(report)
    write_pdca(workbook.create_sheet(_("PDCA")), report, cycles)
    write_actions(workbook.create_sheet(_("Actions")), report, cycles)
    feedback = FeedbackSheet(report)
    feedback.placeholder(workbook.create_sheet(_("Feedback")))
    write_definitions(workbook.create_sheet(_("Definitions")), report)
    return workbook, feedback
