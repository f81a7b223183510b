"""The Feedback sheet: every response in scope with its scores, sentiment, themes and ticket
fields, streamed (:mod:`improvement.report.stream`) so memory stays flat."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.xml.functions import tostring
from sqlalchemy import select

from analysis.dashboards.queries import response_conditions
from survey_app.csvexport import neutralise
from survey_app.extensions import db
from survey_app.labels import label
from survey_app.models import Ticket
from survey_app.surveys.models import SurveyResponse

from .. import stream
from ..cells import DATETIME_FORMAT, HEADER_ALIGNMENT, HEADER_FILL, HEADER_FONT, ReportContext
from ..layout import (
    HEADER_FACTOR,
    HEADER_LINE_POINTS,
    PADDING,
    header_width,
    set_up_printing,
    wrapped_lines,
)

#: The Excel serial of 1970-01-01 (1900 date system).
UNIX_EPOCH_SERIAL = 25569.0


class FeedbackSheet:
    """The Feedback sheet in two steps: :meth:`placeholder` while openpyxl builds the
    workbook, then :meth:`write`, which :func:`.stream.replace_sheet` calls to stream the
    rows into the saved package."""

    def __init__(self, report: ReportContext) -> None:
        self.report = report
        self.title = ""
        self._header_style_id = 0
        self._columns: list[stream.Column] = []
        self._print_xml = ("", "")

    def _feedback_columns(self) -> list[tuple[str, str, float, str | None]]:
        """(header, kind, width of the values, number format) of each feedback column, in
        order. The values' widths are those of their widest shown value (a date and time
        is 16 characters wide, a response id up to 9 digits). Text does not wrap: a row
        per response, one line high (no row height to compute for 100 000 rows)."""
        zone = self.report.scope.timezone
        return [
            (_("Response"), "number", 9, "0"),
            (_("Submitted (%(zone)s)", zone=zone), "datetime", 16, DATETIME_FORMAT),
            (_("Ticket"), "text", 14, None),
            (_("Subject"), "text", 30, None),
            (_("Team"), "text", 14, None),
            (_("Agent"), "text", 14, None),
            (_("Channel"), "text", 10, None),
            (_("Priority"), "text", 10, None),
            (_("Product line"), "text", 14, None),
            (_("Region"), "text", 10, None),
            (_("Customer tier"), "text", 10, None),
            (_("New customer"), "text", 4, None),
            (_("CSAT overall (1–5)"), "number", 2, "0"),
            (_("CSAT speed"), "number", 2, "0"),
            (_("CSAT professionalism"), "number", 2, "0"),
            (_("CSAT attitude"), "number", 2, "0"),
            (_("CSAT effectiveness"), "number", 2, "0"),
            (_("NPS (0–10)"), "number", 2, "0"),
            (_("CES (1–7)"), "number", 2, "0"),
            (_("Sentiment"), "text", 10, None),
            (_("Sentiment score"), "number", 5, "0.00"),
            (_("Themes"), "text", 24, None),
            (_("Problem type"), "text", 14, None),
            (_("Comment"), "text", 58, None),
            (_("Ticket created"), "datetime", 16, DATETIME_FORMAT),
            (_("Ticket closed"), "datetime", 16, DATETIME_FORMAT),
            (_("Contacts"), "number", 3, "0"),
            (_("Reopens"), "number", 3, "0"),
        ]

    def placeholder(self, ws: Worksheet) -> None:
        """An empty sheet whose part :mod:`.stream` replaces; its scratch cells only
        register the header and column styles in the package's style table, and its print
        set-up (:func:`.layout.set_up_printing`) is copied into the streamed part."""
        self.title = ws.title
        header = ws.cell(row=1, column=1, value="")
        header.font = HEADER_FONT
        header.fill = HEADER_FILL
        header.alignment = HEADER_ALIGNMENT
        self._header_style_id = header.style_id
        self._columns = []
        for index, (title, kind, width, number_format) in enumerate(self._feedback_columns()):
            cell = ws.cell(row=2, column=index + 1, value=0)
            if number_format is not None:
                cell.number_format = number_format
            shown_width = max(header_width(title), width + PADDING)
            self._columns.append(stream.Column(title, kind, shown_width, cell.style_id))
        set_up_printing(ws, 1, period=self.report.period, print_area=False)
        self._print_xml = (
            _xml(ws.sheet_properties.to_tree()),
            "".join(
                _xml(part.to_tree())
                for part in (ws.print_options, ws.page_margins, ws.page_setup, ws.HeaderFooter)
            ),
        )

    def rows(self) -> Iterator[list[Any]]:
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
            .where(*response_conditions(self.report.scope))
            .order_by(r.submitted_at, r.id)
            .execution_options(yield_per=2000)
        )
        serial = _SerialClock(self.report.zone)
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

    def write(self, out: IO[bytes]) -> int:
        """Stream the sheet's part (header and :meth:`rows`) to ``out``; return the row count."""
        return stream.write_sheet(
            out,
            self._columns,
            self.rows(),
            header_style_id=self._header_style_id,
            sheet_properties=self._print_xml[0],
            print_setup=self._print_xml[1],
            header_height=header_points(self._columns),
        )


def header_points(columns: list[stream.Column]) -> float:
    """The height of the header row in points: its most wrapped header's lines."""
    lines = max(wrapped_lines(c.header, c.width, HEADER_FACTOR) for c in columns)
    return lines * HEADER_LINE_POINTS + 3


def _xml(element: Any) -> str:
    """An openpyxl element as SpreadsheetML text (in the worksheet's default namespace)."""
    return tostring(element).decode() if element is not None else ""


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
