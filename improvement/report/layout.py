"""How every sheet of the report looks on screen and on paper: column widths from the shown
values, wrapped headers, and the print set-up (A4 landscape, one page wide, the table header
repeated on every page, a page header and footer, charts kept whole on one page).

Widths are counted in Excel's unit, the width of the digit ``0`` of the default font
(Calibri 11, 7 pixels at 96 dpi); a CJK character is counted twice. A value's width is
the width of its text as Excel shows it with the cell's number format (:func:`shown`),
so no number is wide enough to turn into ``###``.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from flask_babel import gettext as _
from openpyxl.chart._chart import ChartBase
from openpyxl.styles import Alignment
from openpyxl.utils import get_column_letter
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.worksheet import Worksheet

#: The widest a column gets; longer text wraps inside it.
MAX_WIDTH = 60.0
#: The narrowest a column gets.
MIN_WIDTH = 6.0
#: Room around a value: the cell's own padding and the digits' rounding.
PADDING = 2.0
#: Proportional text runs wider than digits (capitals, bold): its width is multiplied by this.
TEXT_FACTOR = 1.1
#: A line of wrapped body text holds this many digit widths per Latin character (running
#: text is mostly lower case, narrower than digits: measured 0.65 in LibreOffice with Carlito)
#: and per CJK character (two digits).
LINE_FACTOR, CJK_FACTOR = 0.75, 1.05
#: Bold header text runs wider still.
HEADER_FACTOR = 1.2
#: The height of a line of header text, in points (bold Calibri needs 15, CJK a little more).
HEADER_LINE_POINTS = 16
#: A header wraps onto at most this many lines (never inside a Latin word).
HEADER_LINES = 3
#: Page margins in inches: left/right, top/bottom, and the page header and footer.
MARGIN_SIDE, MARGIN_TOP, MARGIN_HEADER = 0.4, 0.6, 0.25
#: An A4 landscape page, in centimetres.
PAGE_WIDTH_CM, PAGE_HEIGHT_CM = 29.7, 21.0
#: A row of the default height and a line of text, in points; a line of CJK text is taller
#: in the fonts that draw it.
ROW_POINTS, CJK_LINE_POINTS = 15.0, 18.0
ROW_CM = ROW_POINTS * 2.54 / 72
#: Safety margin on estimated heights: a chart goes to the next page rather than split.
HEIGHT_SLACK = 1.15
#: Room between two charts side by side, in centimetres.
CHART_GAP_CM = 0.5
_PIXEL_CM = 2.54 / 96

_QUOTED = re.compile(r'"([^"]*)"')
_NUMBER = re.compile(r"[#0,]*0(?:\.(0+))?|#")


@functools.lru_cache(maxsize=8192)
def char_width(character: str) -> int:
    """2 for a wide (CJK, full-width) character, 0 for a combining mark, else 1."""
    if unicodedata.combining(character):
        return 0
    return 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1


def text_width(text: str) -> int:
    """The widest line of ``text``, counting CJK characters twice."""
    lines = text.split("\n")
    if text.isascii():
        return max(len(line) for line in lines)
    return max(sum(map(char_width, line)) for line in lines)


def _sections(number_format: str) -> list[str]:
    """The ``;``-separated sections of a number format (semicolons in quotes kept)."""
    sections, current, quoted = [], "", False
    for character in number_format:
        if character == '"':
            quoted = not quoted
        if character == ";" and not quoted:
            sections.append(current)
            current = ""
        else:
            current += character
    return [*sections, current]


def _shown_number(value: float, number_format: str) -> str:
    sections = _sections(number_format)
    section = sections[0]
    negative_sign = "-" if value < 0 else ""
    if value < 0 and len(sections) > 1:
        section, negative_sign = sections[1], ""
    elif value == 0 and len(sections) > 2:
        section = sections[2]
    magnitude = abs(value)
    literals = _QUOTED.sub(lambda m: "\0" * len(m.group(1)), section)
    if "[h]" in section.lower():
        minutes = round(magnitude * 24 * 60)
        clock = f"{minutes // 60}:{minutes % 60:02d}"
        return negative_sign + re.sub(r"\[h\]:mm(:ss)?", clock, section, flags=re.I)
    if "%" in literals:
        magnitude *= 100
    match = _NUMBER.search(literals)
    if match is None:
        return negative_sign + _QUOTED.sub(lambda m: m.group(1), section)
    decimals = len(match.group(1) or "")
    grouping = "," if "," in match.group(0) else ""
    digits = f"{magnitude:{grouping}.{decimals}f}"
    start, end = match.span()
    before = _QUOTED.sub(lambda m: m.group(1), section[:start])
    after = _QUOTED.sub(lambda m: m.group(1), section[end:])
    return negative_sign + before + digits + after


def _shown_date(value: date | datetime | time, number_format: str) -> str:
    pattern = number_format.lower()
    for token, code in (("yyyy", "%Y"), ("dd", "%d"), ("hh", "%H"), ("ss", "%S")):
        pattern = pattern.replace(token, code)
    # "mm" is the month after a year or before a day, else minutes.
    pattern = re.sub(r"(?<=%Y-)mm|mm(?=-%d)", "%m", pattern).replace("mm", "%M")
    return value.strftime(pattern)


def shown(value: Any, number_format: str = "General") -> str:
    """The text Excel shows for ``value`` in a cell of ``number_format`` (the formats the
    report uses: digits and grouping, ``%``, quoted units, sign sections, ``[h]:mm``,
    dates; ``General`` numbers with up to 11 significant characters)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, date | datetime | time):
        if number_format == "General":
            return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
        return _shown_date(value, number_format)
    if isinstance(value, timedelta):
        value = value.total_seconds() / 86400
    if isinstance(value, int | float):
        if number_format == "General":
            if isinstance(value, int) or float(value).is_integer():
                return str(int(value))
            return f"{value:.10g}"
        return _shown_number(float(value), number_format)
    return str(value)


def shortened(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` (CJK characters count twice) with an ellipsis."""
    line = " ".join(text.split())
    if text_width(line) <= width:
        return line
    kept, used = "", 0
    for character in line:
        used += char_width(character)
        if used > width - 1:
            break
        kept += character
    return kept.rstrip() + "…"


#: CJK punctuation, kana, ideographs, Hangul, full-width forms: text that breaks anywhere.
_CJK = "\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
_WORDS = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")


def wrapped_lines(text: str, width: float, factor: float = LINE_FACTOR) -> int:
    """How many lines ``text`` takes wrapped in a column ``width`` wide: whole words on a
    line (CJK text breaks between any two characters), a Latin character ``factor`` digits
    wide, a CJK one :data:`CJK_FACTOR`."""
    room = max(width - PADDING, 1.0)
    lines = 0
    for paragraph in text.split("\n"):
        lines += 1
        used = 0.0
        for word in _WORDS.findall(paragraph):
            wide = char_width(word[0]) == 2
            size = text_width(word) * (CJK_FACTOR if wide else factor)
            gap = 0 if used == 0 or wide else factor
            if used and used + gap + size > room:
                lines += 1
                used = 0.0
                gap = 0
            # A word wider than the column is broken across lines.
            while size > room:
                lines += 1
                size -= room
            used += gap + size
    return lines


def header_width(title: str) -> float:
    """The width a header needs to wrap onto at most :data:`HEADER_LINES` lines without
    breaking a Latin word (CJK text wraps between any two characters)."""
    longest = max((text_width(w) for w in _WORDS.findall(title)), default=0)
    width = longest * HEADER_FACTOR + PADDING
    while width < MAX_WIDTH and wrapped_lines(title, width, HEADER_FACTOR) > HEADER_LINES:
        width += 1
    return min(MAX_WIDTH, width)


def value_width(value: Any, number_format: str) -> float:
    """The width a cell needs to show ``value`` whole (text: capped at :data:`MAX_WIDTH`)."""
    text = shown(value, number_format)
    if isinstance(value, str):
        return min(MAX_WIDTH, text_width(text) * TEXT_FACTOR + PADDING)
    return text_width(text) + PADDING


def fit_columns(
    ws: Worksheet, header_rows: Iterable[int], *, notes: Iterable[str] = ()
) -> dict[int, float]:
    """Set each column's width from what it shows: the widest shown value of its cells and
    what its header needs (:func:`header_width`), between :data:`MIN_WIDTH` and
    :data:`MAX_WIDTH`. Text longer than the widest column wraps (its row gets the height
    of its lines). The cells named in ``notes`` (titles and notes that run on across empty
    cells) do not count. Returns the widths by column number."""
    headers, skipped = set(header_rows), set(notes)
    wrapped: set[int] = set()
    widths: dict[int, float] = {}
    for row in ws.iter_rows():
        for cell in row:
            if cell.value is None or cell.coordinate in skipped:
                continue
            if cell.row in headers:
                needed = header_width(str(cell.value))
            else:
                needed = value_width(cell.value, cell.number_format)
                if (
                    isinstance(cell.value, str)
                    and text_width(cell.value) * TEXT_FACTOR + (PADDING) > MAX_WIDTH
                ):
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
                    wrapped.add(cell.row)
            widths[cell.column] = max(widths.get(cell.column, MIN_WIDTH), needed)
    for column, width in widths.items():
        ws.column_dimensions[get_column_letter(column)].width = round(width, 1)
    for row in wrapped - headers:
        # Set heights: applications do not all fit a row's height to wrapped text.
        ws.row_dimensions[row].height = round(content_points(ws, row) + 2, 1)
        for cell in ws[row]:
            if cell.value is not None and not cell.alignment.wrap_text:
                cell.alignment = Alignment(vertical="top")
    for row in headers:
        lines = max(
            wrapped_lines(str(c.value), column_width(ws, c.column), HEADER_FACTOR)
            for c in ws[row]
            if c.value is not None
        )
        ws.row_dimensions[row].height = lines * HEADER_LINE_POINTS + 3
    return widths


def column_width(ws: Worksheet, column: int) -> float:
    """Column ``column``'s width (openpyxl's default 13 where none is set)."""
    dimension = ws.column_dimensions.get(get_column_letter(column))
    return float(dimension.width) if dimension is not None and dimension.width else 13.0


def column_cm(width: float) -> float:
    """A column of ``width`` characters, in centimetres (7 pixels a digit, 5 of padding)."""
    return (width * 7 + 5) * _PIXEL_CM


def content_points(ws: Worksheet, row: int) -> float:
    """The height row ``row``'s content needs, in points: its tallest cell (the lines of
    wrapped text in its column, its font size; CJK lines are taller)."""
    tallest = ROW_POINTS
    for cell in ws[row]:
        if cell.value is None:
            continue
        text = shown(cell.value, cell.number_format)
        lines = 1
        if cell.alignment is not None and cell.alignment.wrap_text:
            lines = wrapped_lines(text, column_width(ws, cell.column))
        line = CJK_LINE_POINTS if any(char_width(c) == 2 for c in text) else ROW_POINTS
        size = float(cell.font.sz or 11) if cell.font is not None else 11.0
        tallest = max(tallest, lines * line * max(size, 11) / 11)
    return tallest


def row_cm(ws: Worksheet, row: int) -> float:
    """Row ``row``'s height in centimetres: as set, else :func:`content_points`."""
    height = ws.row_dimensions[row].height if row in ws.row_dimensions else None
    return float(height or content_points(ws, row)) * 2.54 / 72


def printable_cm() -> tuple[float, float]:
    """The width and height an A4 landscape page prints on, inside the margins, in cm."""
    return (
        PAGE_WIDTH_CM - 2 * MARGIN_SIDE * 2.54,
        PAGE_HEIGHT_CM - 2 * MARGIN_TOP * 2.54,
    )


def fit_scale(ws: Worksheet, last_column: int) -> float:
    """The print scale at which columns 1 to ``last_column`` fit the page's width (at most 1:
    fitting one page wide never enlarges)."""
    width = sum(column_cm(column_width(ws, c)) for c in range(1, last_column + 1))
    return min(1.0, printable_cm()[0] / width) if width else 1.0


def _columns_from(ws: Worksheet, first: int, width_cm: float) -> int:
    """The first column right of a span of ``width_cm`` starting at column ``first``."""
    column = first
    while width_cm > 0:
        width_cm -= column_cm(column_width(ws, column))
        column += 1
    return column


def place_charts(ws: Worksheet, charts: Sequence[ChartBase], top: int, title_row: int) -> int:
    """Anchor ``charts`` from row ``top`` (below every table), side by side as many as the
    tables' width holds and row under row, each whole on one printed page: a page break
    goes before a row of charts that would not fit under what precedes it on its page.
    Heights are estimated generously (:data:`HEIGHT_SLACK`), at the scale that fits the
    tables one page wide, with the repeated header row ``title_row`` at the top of each
    page. Returns the first row after the charts."""
    if not charts:
        return top
    last_column = ws.max_column
    tables_cm = sum(column_cm(column_width(ws, c)) for c in range(1, last_column + 1))
    widest = max(chart.width for chart in charts) + CHART_GAP_CM
    per_row = max(1, int((tables_cm + CHART_GAP_CM) // widest))
    # The estimated scale is taken a little larger than computed: less room, never too much.
    scale = min(1.0, fit_scale(ws, last_column) * 1.1)
    height = printable_cm()[1] / scale - row_cm(ws, title_row) * HEIGHT_SLACK
    used = sum(row_cm(ws, r) for r in range(1, top)) * HEIGHT_SLACK
    if used > height:
        # Where the tables' own pages end is not known exactly: start the charts afresh.
        used = height
    row = top
    for first in range(0, len(charts), per_row):
        group = charts[first : first + per_row]
        rows = math.ceil(max(chart.height for chart in group) / ROW_CM) + 1
        if used + rows * ROW_CM > height:
            # The break goes above the empty row before the charts: a chart starting right
            # on a page's edge gets a sliver of its frame drawn on the page before.
            ws.row_breaks.append(Break(id=row - 2))
            used = ROW_CM
        column = 1
        for chart in group:
            ws.add_chart(chart, f"{get_column_letter(column)}{row}")
            column = _columns_from(ws, column, widest)
        row += rows
        used += rows * ROW_CM
    return row


def _chart_extent(ws: Worksheet) -> tuple[int, int]:
    """The last column and row any chart of ``ws`` covers."""
    last_column, last_row = 1, 1
    for chart in ws._charts:
        # add_chart keeps the anchor cell's name ("A12") until the sheet is saved.
        letters, first_row = coordinate_from_string(str(chart.anchor))
        column = _columns_from(ws, column_index_from_string(letters), chart.width)
        last_column = max(last_column, column - 1)
        last_row = max(last_row, first_row + math.ceil(chart.height / ROW_CM))
    return last_column, last_row


def _header_text(text: str) -> str:
    """Text for a page header or footer: ``&`` starts a code there, so it is doubled."""
    return text.replace("&", "&&")


def set_up_printing(
    ws: Worksheet,
    title_row: int | None,
    *,
    period: str,
    freeze_column: int = 1,
    print_area: bool = True,
) -> None:
    """Print ``ws`` on A4 landscape, one page wide and as many tall as it takes, with
    header row ``title_row`` repeated on every page and the panes frozen below it (and
    right of ``freeze_column`` − 1 columns); a page header with the report's title, the
    sheet's name and ``period``, a footer with the page number. The print area covers the
    cells and the charts, unless ``print_area`` is False (the streamed Feedback sheet)."""
    setup = ws.page_setup
    setup.orientation = ws.ORIENTATION_LANDSCAPE
    setup.paperSize = ws.PAPERSIZE_A4
    setup.fitToWidth = 1
    setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    margins = ws.page_margins
    margins.left = margins.right = MARGIN_SIDE
    margins.top = margins.bottom = MARGIN_TOP
    margins.header = margins.footer = MARGIN_HEADER
    ws.print_options.horizontalCentered = False
    ws.oddHeader.left.text = _header_text(_("ClosedLoop improvement report"))
    ws.oddHeader.center.text = "&A"
    ws.oddHeader.right.text = _header_text(period)
    ws.oddFooter.center.text = _("Page %(page)s of %(pages)s", page="&P", pages="&N")
    if title_row is not None:
        ws.print_title_rows = f"{title_row}:{title_row}"
        ws.freeze_panes = ws.cell(row=title_row + 1, column=freeze_column)
    if print_area:
        chart_column, chart_row = _chart_extent(ws)
        last_column = max(ws.max_column, chart_column)
        last_row = max(ws.max_row, chart_row)
        ws.print_area = f"A1:{get_column_letter(last_column)}{last_row}"
