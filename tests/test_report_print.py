"""The Excel report as a manager prints it: every sheet's print set-up, column widths wide
enough for what they show, number formats (percentage points, durations, percentages,
counts), wrapped headers, charts kept whole on a page, readable Pareto labels, and user
text still neutralised. How it renders in LibreOffice is checked by hand with
``scripts/render_report.py`` (docs/user-guide/report.md), not here."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from openpyxl.workbook.workbook import Workbook

from analysis.metrics import Scope, compute
from improvement.report.layout import (
    HEADER_LINES,
    ROW_CM,
    header_width,
    shortened,
    shown,
    text_width,
    wrapped_lines,
)
from improvement.report.sheets.root_causes import CHART_LABEL_WIDTH
from survey_app.extensions import db
from survey_app.models import Role, User
from survey_app.surveys.models import SentimentLabel
from tests.test_report import (
    SEPTEMBER,
    SHEETS,
    _assert_no_formula,
    _book,
    _september,
    _summary_rows,
    sheet,
)

pytestmark = pytest.mark.db

#: The header row each sheet repeats on every printed page, and where its panes freeze.
TITLE_ROWS = {
    "Summary": (10, "B11"),
    "Trends": (2, "B3"),
    "Root causes": (2, "A3"),
    "PDCA": (1, "C2"),
    "Actions": (1, "A2"),
    "Feedback": (1, "A2"),
    "Definitions": (5, "A6"),
}
LONG_TITLE = "=客户反复描述同一个问题，转接后上下文全部丢失 Hand-offs lose the whole case history"


def _plain(value: float, decimals: int, grouping: bool = False) -> str:
    return f"{value:{',' if grouping else ''}.{decimals}f}"


def _signed(decimals: int, unit: str = "", grouping: bool = False):
    def show(value: float) -> str:
        sign = "+" if value > 0 else "-" if value < 0 else ""
        return sign + _plain(abs(value), decimals, grouping) + unit

    return show


def _clock(value: float) -> str:
    minutes = round(value * 24 * 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


#: What Excel shows for a number in each format the report uses, written out by hand.
SHOWN: dict[str, Any] = {
    "General": lambda v: str(v) if isinstance(v, int) else f"{v:.10g}",
    "0": lambda v: _plain(v, 0),
    "#,##0": lambda v: _plain(v, 0, grouping=True),
    "0.0": lambda v: _plain(v, 1),
    "0.00": lambda v: _plain(v, 2),
    "0.0000": lambda v: _plain(v, 4),
    '0.0"%"': lambda v: _plain(v, 1) + "%",
    "0.0%": lambda v: _plain(100 * v, 1) + "%",
    "[h]:mm": _clock,
    '+0.0" pts";-0.0" pts";0.0" pts"': _signed(1, " pts"),
    '+#,##0" min";-#,##0" min";0" min"': _signed(0, " min", grouping=True),
    "+0.0;-0.0;0.0": _signed(1),
    "+0.00;-0.00;0.00": _signed(2),
    "yyyy-mm-dd": lambda v: v.strftime("%Y-%m-%d"),
    "yyyy-mm": lambda v: v.strftime("%Y-%m"),
    "yyyy-mm-dd hh:mm": lambda v: v.strftime("%Y-%m-%d %H:%M"),
}


def _recent_book(app, make_user, language: str = "en") -> Workbook:
    """A book of the last 30 days with a PDCA cycle and its actions, and a root cause with
    a long title that starts with a formula character."""
    from improvement.pdca.actions import add_action
    from improvement.pdca.plan import PlanInput, create_cycle
    from improvement.root_causes.cases import auto_open_case
    from improvement.root_causes.causes import create_root_cause, link_case
    from tests.root_cause_factories import analyse, make_response

    owner_id = make_user(Role.MANAGER, name="Lin").id
    today = datetime.now(SEPTEMBER.zone).date()
    with app.app_context():
        owner = db.session.get(User, owner_id)
        baseline_day = datetime.combine(today - timedelta(days=40), time(4), UTC)
        for score in (10, 2):
            make_response(nps=score, submitted_at=baseline_day)
        cycle = create_cycle(
            PlanInput(
                title="+Faster first replies on the evening shift",
                owner=owner,
                kpi="nps",
                baseline_start=today - timedelta(days=60),
                baseline_end=today - timedelta(days=31),
                target_value=40.0,
                target_date=today + timedelta(days=30),
            ),
            owner,
        )
        late = add_action(
            cycle, title="-Roster review", owner=owner, deadline=today + timedelta(days=5),
            user=owner,
        )  # fmt: skip
        late.deadline = today - timedelta(days=400)
        for title, cases in ((LONG_TITLE, 3), ("Short-staffed evenings", 1)):
            root_cause = create_root_cause(title)
            for _ in range(cases):
                low = make_response(nps=1)
                analyse(low, label=SentimentLabel.NEGATIVE, keywords=["等待"], send=False)
                case = auto_open_case(low.id)
                assert case is not None
                link_case(case, root_cause)
        db.session.commit()
        return _book(Scope(start=today - timedelta(days=29), end=today), language=language)


@pytest.fixture
def books(app, make_user) -> list[Workbook]:
    """The September book (KPIs, trends, feedback) and the recent one (PDCA, actions, root
    causes), in English."""
    with app.app_context():
        _september(app)
    september = _book()
    return [september, _recent_book(app, make_user)]


def test_every_sheet_is_set_up_to_print(books):
    for book in books:
        assert book.sheetnames == SHEETS
        for ws in book.worksheets:
            title_row, frozen = TITLE_ROWS[ws.title]
            setup = ws.page_setup
            assert setup.orientation == "landscape", ws.title
            assert int(setup.paperSize) == 9  # A4
            assert int(setup.fitToWidth) == 1 and int(setup.fitToHeight) == 0
            assert ws.sheet_properties.pageSetUpPr.fitToPage is True
            assert ws.print_title_rows == f"${title_row}:${title_row}", ws.title
            assert ws.freeze_panes == frozen, ws.title
            assert "&P" in ws.oddFooter.center.text and "&N" in ws.oddFooter.center.text
            assert ws.oddHeader.center.text == "&A"
            assert ws.page_margins.left == pytest.approx(0.4)
            if ws.title != "Feedback":  # streamed: its rows are not known when it is set up
                assert ws.print_area.startswith(f"'{ws.title}'!$A$1:")


def _column_widths(ws: Any) -> dict[int, float]:
    return {
        dimension.min: float(dimension.width)
        for dimension in ws.column_dimensions.values()
        if dimension.customWidth and dimension.min
    }


def test_columns_are_wider_than_every_number_they_show(books):
    """No number can turn into ###: each column is wider (in characters, plus padding) than
    every value of it as shown in its number format."""
    checked = 0
    for book in books:
        for ws in book.worksheets:
            widths = _column_widths(ws)
            for row in ws.iter_rows():
                for cell in row:
                    value = cell.value
                    if isinstance(value, timedelta):  # a duration read back from [h]:mm
                        value = value.total_seconds() / 86400
                    if not isinstance(value, int | float | datetime | date) or isinstance(
                        value, bool
                    ):
                        continue
                    assert cell.number_format in SHOWN, (ws.title, cell.coordinate)
                    text = SHOWN[cell.number_format](value)
                    width = widths.get(cell.column, 0)
                    assert width >= len(text) + 1, (ws.title, cell.coordinate, text, width)
                    checked += 1
    assert checked > 300


def test_text_columns_fit_or_wrap(books):
    """A text cell either fits its column or wraps inside it; no column is wider than 60."""
    for book in books:
        for ws in book.worksheets:
            widths = _column_widths(ws)
            assert max(widths.values()) <= 60, ws.title
            if ws.title == "Feedback":
                continue
            title_row = TITLE_ROWS[ws.title][0]
            for row in ws.iter_rows(min_row=title_row + 1):
                for cell in row:
                    if not isinstance(cell.value, str) or cell.column not in widths:
                        continue
                    fits = text_width(cell.value) < widths[cell.column]
                    neighbour = ws.cell(row=cell.row, column=cell.column + 1).value
                    assert fits or cell.alignment.wrap_text or neighbour is None, (
                        ws.title,
                        cell.coordinate,
                    )


def test_headers_are_bold_wrapped_and_centred(books):
    for book in books:
        for ws in book.worksheets:
            title_row = TITLE_ROWS[ws.title][0]
            headers = [c for c in ws[title_row] if c.value]
            assert headers, ws.title
            for cell in headers:
                assert cell.font.b, (ws.title, cell.coordinate)
                assert cell.alignment.wrap_text, (ws.title, cell.coordinate)
                assert cell.alignment.vertical == "center", (ws.title, cell.coordinate)
            assert ws.row_dimensions[title_row].height >= 15, ws.title


def test_number_formats_of_changes_durations_and_percentages(app):
    with app.app_context():
        _september(app)
        now = compute(SEPTEMBER).overall
        before = compute(SEPTEMBER.previous()).overall
        english = _book()
        chinese = _book(language="zh_Hans")
    ws = english["Summary"]
    rows = _summary_rows(english)
    csat = rows["csat_overall_percent"]
    assert ws.cell(row=csat, column=2).number_format == '0.0"%"'
    change = ws.cell(row=csat, column=4)
    assert change.number_format == '+0.0" pts";-0.0" pts";0.0" pts"'
    assert shown(2.34, change.number_format) == "+2.3 pts"
    nps_change = ws.cell(row=rows["nps"], column=4)
    assert nps_change.value == pytest.approx(now["nps"].value - before["nps"].value)
    assert nps_change.number_format == "+0.0;-0.0;0.0"
    assert shown(nps_change.value, nps_change.number_format) == "+125.0"
    p90 = rows["first_response_time_p90"]
    value = ws.cell(row=p90, column=2)
    assert value.number_format == "[h]:mm"
    # openpyxl reads an [h]:mm cell back as a duration.
    assert value.value.total_seconds() == pytest.approx(now["first_response_time_p90"].value)
    assert shown(value.value, "[h]:mm") == "0:10"  # every ticket answered in 10 minutes
    assert ws.cell(row=p90, column=1).value.endswith("(h:mm)")
    assert ws.cell(row=p90, column=4).number_format == '+#,##0" min";-#,##0" min";0" min"'
    assert ws.cell(row=rows["nps"], column=7).number_format == "#,##0"
    assert ws.cell(row=rows["csat_overall_average"], column=4).number_format == (
        "+0.00;-0.00;0.00"
    )
    zh = sheet(chinese, "Summary")
    points = '" 个百分点"'
    assert zh.cell(row=csat, column=4).number_format == f"+0.0{points};-0.0{points};0.0{points}"
    assert zh.cell(row=p90, column=4).number_format.startswith('+#,##0" 分钟"')
    assert zh.cell(row=p90, column=1).value.endswith("（时:分）")


def test_change_formats_by_unit(app):
    """Every change (the Summary's, a PDCA Check's difference and its interval) is signed,
    in its unit's change format."""
    from improvement.report.cells import change_format, change_value

    with app.app_context():
        assert change_format("sla_breach_rate") == '+0.0" pts";-0.0" pts";0.0" pts"'
        assert change_format("nps") == "+0.0;-0.0;0.0"
        assert change_format("ces_average") == "+0.00;-0.00;0.00"
        assert change_format("contacts_per_ticket") == "+0.00;-0.00;0.00"
        assert change_format("resolution_time_mean") == '+#,##0" min";-#,##0" min";0" min"'
        assert change_value("resolution_time_mean", -5400.0) == -90.0
        assert change_value("nps", -5.0) == -5.0


def test_pdca_and_actions_numbers(app, make_user):
    book = _recent_book(app, make_user)
    ws = book["PDCA"]
    assert ws["F2"].value == 0 and ws["F2"].number_format == "0.0"  # NPS of a 10 and a 2
    assert ws["G2"].value == 2 and ws["G2"].number_format == "#,##0"
    assert ws["J2"].value == 40 and ws["J2"].number_format == "0.0"
    assert ws["W2"].value == 1
    actions = book["Actions"]
    assert actions["H2"].value == 400 and actions["H2"].number_format == "#,##0"
    _assert_no_formula(book)


def _anchor(chart: Any) -> tuple[int, int]:
    start = chart.anchor._from
    return start.col + 1, start.row + 1


def test_charts_sit_below_the_tables_and_are_never_split(books):
    september, recent = books
    for ws in (september["Trends"], recent["Root causes"]):
        breaks = [int(b.id) for b in ws.row_breaks.brk]
        last_table_row = max(
            cell.row for row in ws.iter_rows() for cell in row if cell.value is not None
        )
        assert ws._charts, ws.title
        for chart in ws._charts:
            column, row = _anchor(chart)
            assert row > last_table_row, ws.title
            # Read back, a chart's size is its anchor's extent (EMU).
            height_cm = chart.anchor.ext.height / 360_000
            last = row + math.ceil(height_cm / ROW_CM) - 1
            # A break with id b comes after row b: none falls inside the chart's rows.
            assert not any(row <= b < last for b in breaks), (ws.title, row, breaks)
            assert int(ws.print_area.rsplit("$", 1)[1]) >= last
    trends = september["Trends"]
    rows = sorted({_anchor(c)[1] for c in trends._charts})
    columns = sorted({_anchor(c)[0] for c in trends._charts})
    assert len(columns) == 2  # two charts side by side, as wide as the tables
    assert len(trends._charts) == 6 and len(rows) == 3


def test_pareto_chart_labels_are_short_and_slanted(books):
    ws = books[1]["Root causes"]
    titles = {ws.cell(row=r, column=2).value: r for r in (3, 4)}
    long_row = titles["'" + LONG_TITLE]  # the full title, neutralised, in the table
    label = ws.cell(row=long_row, column=9).value
    assert label.startswith("1. ") and label.endswith("…")
    assert text_width(label) <= len("1. ") + CHART_LABEL_WIDTH
    assert ws.cell(row=titles["Short-staffed evenings"], column=9).value == (
        "2. Short-staffed evenings"
    )
    (chart,) = ws._charts
    categories = chart.series[0].cat
    assert (categories.numRef or categories.strRef).f.endswith("$I$3:$I$4")
    assert chart.x_axis.txPr.bodyPr.rot == -45 * 60_000
    _assert_no_formula(books[1])


def test_shown_values_and_widths():
    assert shown(2.345, '+0.0" pts";-0.0" pts";0.0" pts"') == "+2.3 pts"
    assert shown(-2.345, '+0.0" pts";-0.0" pts";0.0" pts"') == "-2.3 pts"
    assert shown(0.0, '+0.0" pts";-0.0" pts";0.0" pts"') == "0.0 pts"
    assert shown(-1234.0, '+#,##0" min";-#,##0" min";0" min"') == "-1,234 min"
    assert shown(261527.4 / 86400, "[h]:mm") == "72:39"
    assert shown(0.655, "0.0%") == "65.5%"
    assert shown(65.5, '0.0"%"') == "65.5%"
    assert shown(-3.25, "0.0") == "-3.2" or shown(-3.25, "0.0") == "-3.3"
    assert shown(datetime(2025, 9, 15, 12, 5), "yyyy-mm-dd hh:mm") == "2025-09-15 12:05"
    assert shown(date(2025, 9, 1), "yyyy-mm") == "2025-09"
    assert text_width("满意度 ok") == 9
    assert shortened("转接丢失上下文，客户需要重复描述问题", 12) == "转接丢失上…"
    assert shortened("short", 12) == "short"
    # A header wraps onto at most three lines, never inside a word.
    for title in ("First response, business hours, P90 (h:mm)", "CSAT professionalism"):
        width = header_width(title)
        assert wrapped_lines(title, width, 1.2) <= HEADER_LINES
        assert width >= max(text_width(w) for w in title.split()) + 2
    cjk = "首次响应，工作时间，P90（时:分）"
    assert wrapped_lines(cjk, header_width(cjk), 1.2) <= HEADER_LINES
