"""The Excel improvement report: sheets, numbers against analysis.metrics, charts, formats,
conditional formatting, formula injection, languages, the CLI and the download's role check."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.workbook.workbook import Workbook

from analysis.metrics import ALL_KPIS, DEFINITIONS_VERSION, Scope, compute
from analysis.targets.models import KpiTarget
from improvement.report.stream import excel_serial
from improvement.report.workbook import report_bytes
from survey_app.extensions import db
from survey_app.models import Role, User
from survey_app.surveys.models import SentimentLabel
from tests.kpi_data import MID_SEPTEMBER, KpiData

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

SEPTEMBER = Scope(start=date(2025, 9, 1), end=date(2025, 9, 30))
SHEETS = ["Summary", "Trends", "Root causes", "PDCA", "Actions", "Feedback", "Definitions"]
PREFIXES = ["=", "+", "-", "@", "\t", "\r"]


def sheet(book: Any, english_name: str) -> Any:
    """A sheet by its English name, in a book of either language (names are translated)."""
    return book.worksheets[SHEETS.index(english_name)]


def _book(scope: Scope = SEPTEMBER, language: str = "en") -> Workbook:
    return load_workbook(io.BytesIO(report_bytes(scope, language=language)))


def _september(app) -> KpiData:
    """Hand-computed: Frontline 3 answers (NPS 10, 9, 3 → 2 promoters, 1 detractor: NPS 33.3),
    Backline 1 answer (NPS 7); CSAT overall 5, 4, 2, 3 → 2 of 4 satisfied = 50 %."""
    kd = KpiData()
    rows = [
        ("Frontline", 10, 5, "Fast and kind", SentimentLabel.POSITIVE, ["速度"]),
        ("Frontline", 9, 4, None, None, None),
        ("Frontline", 3, 2, "太慢了", SentimentLabel.NEGATIVE, ["速度", "等待"]),
        ("Backline", 7, 3, "ok", SentimentLabel.NEUTRAL, []),
    ]
    for offset, (team, nps, csat, comment, sentiment, keywords) in enumerate(rows):
        response = kd.response(
            kd.ticket(team=team, created_at=MID_SEPTEMBER - timedelta(hours=3)),
            submitted_at=MID_SEPTEMBER + timedelta(hours=offset),
            nps=nps,
            csat_overall=csat,
            ces=6,
            comment=comment,
        )
        response.sentiment_label = sentiment
        response.keywords = keywords
    # One answer in the previous period (August 2 - 31), a detractor.
    kd.response(kd.ticket(), submitted_at=datetime(2025, 8, 20, 4, tzinfo=UTC), nps=0)
    db.session.commit()
    return kd


def _summary_rows(book: Workbook) -> dict[str, int]:
    ws = book["Summary"]
    return {ws.cell(row=r, column=12).value: r for r in range(11, 11 + len(ALL_KPIS))}


def test_sheets_summary_values_and_formats(app):
    with app.app_context():
        _september(app)
        db.session.add(KpiTarget(kpi="nps", target=50, yellow=-5, orange=5, red=10, filters={}))
        db.session.commit()
        app.config["METRICS_MIN_SAMPLE"] = 2
        expected = compute(SEPTEMBER, min_sample=2).overall
        previous = compute(SEPTEMBER.previous(), min_sample=2).overall
        book = _book()
    assert book.sheetnames == SHEETS
    ws = book["Summary"]
    rows = _summary_rows(book)
    assert set(rows) == set(ALL_KPIS)
    nps_row = rows["nps"]
    assert ws.cell(row=nps_row, column=2).value == pytest.approx(expected["nps"].value)
    assert ws.cell(row=nps_row, column=2).value == pytest.approx(100 * (2 - 1) / 4)
    assert ws.cell(row=nps_row, column=3).value == pytest.approx(previous["nps"].value) == -100
    assert ws.cell(row=nps_row, column=4).value == pytest.approx(25 - -100)
    assert ws.cell(row=nps_row, column=5).value == 50
    # 50 − 25 = 25 > red (10): red fill.
    assert ws.cell(row=nps_row, column=6).fill.start_color.rgb.endswith("FFC7CE")
    assert ws.cell(row=nps_row, column=7).value == 4
    assert ws.cell(row=nps_row, column=11).value == 1
    csat = rows["csat_overall_percent"]
    assert ws.cell(row=csat, column=2).value == pytest.approx(50.0)
    assert ws.cell(row=csat, column=2).number_format == '0.0"%"'
    ci = expected["csat_overall_percent"].ci
    assert ws.cell(row=csat, column=9).value == pytest.approx(ci[0])
    # Durations are Excel times (seconds / 86 400) shown in hours and minutes.
    assert ws.cell(row=rows["first_response_time_p90"], column=2).number_format == "[h]:mm"
    # Low-confidence mark where n < 2: the previous period's ... and the KPIs with n = 0.
    assert ws.cell(row=rows["fcr"], column=8).value is None
    assert ws.cell(row=rows["response_rate"], column=8).value is None
    # Dates are dates; the definitions version is recorded.
    assert ws["B2"].value == datetime(2025, 9, 1) and ws["B2"].number_format == "yyyy-mm-dd"
    assert ws["C3"].value == datetime(2025, 8, 31)
    assert ws["B6"].value == DEFINITIONS_VERSION
    assert ws.page_setup.orientation == "landscape"
    assert ws.page_setup.fitToWidth == 1
    assert ws.sheet_properties.pageSetUpPr.fitToPage is True


def test_trends_tables_and_native_charts(app):
    with app.app_context():
        _september(app)
        db.session.add(KpiTarget(kpi="nps", target=40, yellow=-5, orange=5, red=10, filters={}))
        db.session.commit()
        weekly = compute(SEPTEMBER, grain="week", metrics=("nps",))
        book = _book()
    ws = book["Trends"]
    assert ws["A2"].value == "Week starting"
    labels = [g.key["period"] for g in weekly.groups]
    assert [ws.cell(row=3 + i, column=1).value.date().isoformat() for i in range(len(labels))] == (
        labels
    )
    nps_column = 4  # period, csat %, csat n, nps ...
    assert ws.cell(row=2, column=nps_column).value == "NPS"
    for i, group in enumerate(weekly.groups):
        value = ws.cell(row=3 + i, column=nps_column).value
        assert value == (None if group.kpis["nps"].value is None else pytest.approx(value))
        assert ws.cell(row=3 + i, column=nps_column + 1).value == group.kpis["nps"].n
    week_of_15th = labels.index("2025-09-15")
    assert ws.cell(row=3 + week_of_15th, column=nps_column).value == pytest.approx(25.0)
    charts = ws._charts
    assert len(charts) == 6  # NPS, CSAT %, answers; weekly and monthly
    nps_chart = charts[0]
    assert len(nps_chart.series) == 2  # the KPI and its target line
    assert nps_chart.x_axis.delete is False and nps_chart.y_axis.delete is False  # axes shown
    assert [type(c).__name__ for c in charts] == ["LineChart", "LineChart", "BarChart"] * 2


def test_feedback_sheet_streams_every_response(app):
    with app.app_context():
        _september(app)
        book = _book()
    ws = book["Feedback"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "Response" and rows[0][1] == "Submitted (Asia/Shanghai)"
    assert len(rows) == 1 + 4
    first = rows[1]
    # 04:00 UTC = noon in Shanghai, as a real Excel date.
    assert first[1] == datetime(2025, 9, 15, 12, 0)
    assert first[4] == "Frontline" and first[6] == "chat"
    assert first[12] == 5 and first[17] == 10 and first[18] == 6
    assert first[19] == "positive" and first[21] == "速度" and first[23] == "Fast and kind"
    assert rows[3][21] == "速度, 等待"
    assert ws["B2"].number_format == "yyyy-mm-dd hh:mm"
    assert ws["M2"].number_format == "0"
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "AB1:AB5".replace("AB1", "A1")


def test_excel_serial_matches_openpyxl():
    from openpyxl.utils.datetime import to_excel

    moment = datetime(2025, 9, 15, 12, 30)
    assert excel_serial(moment) == pytest.approx(to_excel(moment))
    assert excel_serial(date(2025, 9, 15)) == to_excel(date(2025, 9, 15))


@pytest.mark.parametrize("prefix", PREFIXES, ids=repr)
def test_every_formula_prefix_is_neutralised(app, prefix):
    payload = f'{prefix}HYPERLINK("http://evil.example","x")'
    with app.app_context():
        kd = KpiData()
        ticket = kd.ticket(team=payload, agent=payload, region=payload)
        ticket.subject = payload
        response = kd.response(ticket, nps=5, comment=payload)
        response.keywords = [payload]
        response.sentiment_label = SentimentLabel.NEGATIVE
        from analysis.text.models import replace_response_keywords

        replace_response_keywords({response.id: [payload]})
        db.session.commit()
        scope = Scope(start=SEPTEMBER.start, end=SEPTEMBER.end, team=(payload,))
        book = _book(scope)
    feedback = book["Feedback"]
    row = next(feedback.iter_rows(min_row=2, max_row=2))
    for column in (3, 4, 5, 9, 21, 23):  # subject, team, agent, region, themes, comment
        cell = row[column]
        assert cell.data_type != "f"
        assert isinstance(cell.value, str) and cell.value.startswith("'"), (column, cell.value)
    summary = book["Summary"]
    assert summary["B5"].data_type != "f" and summary["B5"].value.startswith("team: ")
    assert any("HYPERLINK" in str(c.value) for r in book["Root causes"].iter_rows() for c in r)
    _assert_no_formula(book)


def _assert_no_formula(book: Workbook) -> None:
    """No cell of the workbook is a formula or starts with a formula character."""
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(tuple(PREFIXES)), (ws.title, cell.value)


def test_an_empty_period(app):
    with app.app_context():
        _september(app)
        book = _book(Scope(start=date(2020, 1, 1), end=date(2020, 1, 31)))
    assert book.sheetnames == SHEETS
    ws = book["Summary"]
    nps_row = _summary_rows(book)["nps"]
    assert ws.cell(row=nps_row, column=2).value is None
    assert ws.cell(row=nps_row, column=7).value == 0
    assert ws.cell(row=nps_row, column=8).value == "*"
    assert book["Feedback"].max_row == 1
    assert book["PDCA"]["A2"].value == "No PDCA cycle in scope in the period."
    assert book["Actions"]["A2"].value == "No action items in scope."


def test_a_single_team(app):
    frontline = Scope(start=SEPTEMBER.start, end=SEPTEMBER.end, team=("Frontline",))
    with app.app_context():
        _september(app)
        expected = compute(frontline).overall
        book = _book(frontline)
    ws = book["Summary"]
    nps_row = _summary_rows(book)["nps"]
    assert ws.cell(row=nps_row, column=2).value == pytest.approx(expected["nps"].value)
    assert ws.cell(row=nps_row, column=2).value == pytest.approx(100 / 3)
    assert ws["B5"].value == "team: Frontline"
    teams = {row[4] for row in book["Feedback"].iter_rows(min_row=2, values_only=True)}
    assert teams == {"Frontline"}


def test_both_languages(app):
    with app.app_context():
        _september(app)
        english = _book(language="en")
        chinese = _book(language="zh_Hans")
    assert english["Feedback"]["G2"].value == "chat"
    # Sheet names are translated too: the Chinese book is read by position.
    assert chinese.sheetnames[SHEETS.index("Feedback")] == "反馈"
    assert sheet(chinese, "Feedback")["G2"].value == "在线聊天"
    assert len(chinese.sheetnames) == len(SHEETS)
    with app.app_context(), pytest.raises(ValueError):
        report_bytes(SEPTEMBER, language="fr")


def _cycle_with_overdue_action(owner: User) -> tuple[int, int]:
    from improvement.pdca.actions import add_action
    from improvement.pdca.plan import PlanInput, create_cycle

    today = datetime.now(SEPTEMBER.zone).date()
    kd = KpiData()
    for score in (10, 2):
        submitted = datetime.combine(today - timedelta(days=40), datetime.min.time(), UTC)
        kd.response(kd.ticket(), submitted_at=submitted + timedelta(hours=4), nps=score)
    cycle = create_cycle(
        PlanInput(
            title="=Faster first replies",
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
        cycle, title="Roster review", owner=owner, deadline=today + timedelta(days=5), user=owner
    )
    on_time = add_action(
        cycle, title="IVR", owner=owner, deadline=today + timedelta(days=9), user=owner
    )
    late.deadline = today - timedelta(days=4)
    db.session.commit()
    return cycle.id, on_time.id


def test_pdca_and_actions_sheets(app, make_user):
    owner = make_user(Role.MANAGER, name="Lin")
    today = datetime.now(SEPTEMBER.zone).date()
    recent = Scope(start=today - timedelta(days=29), end=today)
    with app.app_context():
        owner = db.session.get(User, owner.id)
        cycle_id, _action = _cycle_with_overdue_action(owner)
        book = _book(recent)
    ws = book["PDCA"]
    assert [c.value for c in ws[1]][:4] == ["Cycle", "Title", "Stage", "Owner"]
    assert ws["A2"].value == cycle_id
    assert ws["B2"].value == "'=Faster first replies"
    _assert_no_formula(book)
    assert ws["C2"].value == "Plan" and ws["D2"].value == "Lin"
    assert ws["J2"].value == 40 and ws["K2"].value.date() == today + timedelta(days=30)
    assert ws["W2"].value == 1
    assert ws.freeze_panes == "C2" and ws.auto_filter.ref.startswith("A1:")
    actions = book["Actions"]
    rows = list(actions.iter_rows(min_row=2, values_only=True))
    assert [(r[2], r[7]) for r in rows] == [("Roster review", 4), ("IVR", 0)]
    assert rows[0][4].date() == today - timedelta(days=4)
    assert actions["E2"].number_format == "yyyy-mm-dd"
    assert actions.freeze_panes == "A2" and actions.auto_filter.ref == "A1:H3"
    rules = [
        (str(rng.sqref), rule) for rng in actions.conditional_formatting for rule in rng.rules
    ]
    assert [(sqref, r.type, r.operator, r.formula) for sqref, r in rules] == [
        ("H2:H3", "cellIs", "greaterThan", ["0"])
    ]


def test_root_cause_pareto_sheet(app):
    from improvement.root_causes.cases import auto_open_case
    from improvement.root_causes.causes import create_root_cause, link_case
    from tests.root_cause_factories import analyse, make_response

    today = datetime.now(SEPTEMBER.zone).date()
    with app.app_context():
        root_cause = create_root_cause("Short-staffed evenings")
        for _ in range(2):
            low = make_response(nps=1)
            analyse(low, label=SentimentLabel.NEGATIVE, send=False)
            case = auto_open_case(low.id)
            assert case is not None
            link_case(case, root_cause)
        db.session.commit()
        book = _book(Scope(start=today - timedelta(days=6), end=today))
    ws = book["Root causes"]
    assert ws["B3"].value == "Short-staffed evenings"
    assert ws["D3"].value == 2 and ws["G3"].value == 1 and ws["G3"].number_format == "0.0%"
    assert ws["H3"].value == "yes"
    assert len(ws._charts) == 1


def test_definitions_sheet(app):
    with app.app_context():
        book = _book()
    ws = book["Definitions"]
    assert DEFINITIONS_VERSION in ws["A2"].value
    codes = {ws.cell(row=r, column=2).value: r for r in range(6, 6 + len(ALL_KPIS))}
    assert set(codes) == set(ALL_KPIS)
    assert "promoters" in ws.cell(row=codes["nps"], column=4).value
    assert all(ws.cell(row=r, column=4).value for r in codes.values())
    # The unit as the workbook shows it, in words: durations are h:mm, not seconds.
    assert ws.cell(row=codes["first_response_time_p90"], column=3).value == "hours:minutes (h:mm)"
    assert ws.cell(row=codes["nps"], column=3).value == "NPS points (−100 to 100)"
    assert ws.cell(row=codes["fcr"], column=3).value == "percent (0–100)"


def test_cli_writes_the_report(app, runner, tmp_path: Path):
    out = tmp_path / "report.xlsx"
    with app.app_context():
        _september(app)
    result = runner.invoke(
        args=[
            "report", "excel", "--from", "2025-09-01", "--to", "2025-09-30",
            "--team", "Frontline", "--lang", "zh_Hans", "--out", str(out),
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 responses" in result.output
    book = load_workbook(out)
    assert sheet(book, "Feedback").max_row == 4
    bad = runner.invoke(args=["report", "excel", "--from", "2025-13-01", "--out", str(out)])
    assert bad.exit_code == 2 and "not a date" in bad.output
    missing = runner.invoke(
        args=["report", "excel", "--out", str(tmp_path / "no" / "such" / "r.xlsx")]
    )
    assert missing.exit_code == 1 and "cannot write" in missing.output


@pytest.mark.parametrize(
    ("role", "status"), [(Role.ANALYST, 403), (Role.MANAGER, 200), (Role.ADMIN, 200)]
)
def test_download_route_checks_the_role(app, client, auth, make_user, role, status):
    with app.app_context():
        _september(app)
    auth.sign_in(make_user(role))
    response = client.get("/reports/excel?from=2025-09-01&to=2025-09-30&lang=en")
    assert response.status_code == status
    if status == 200:
        assert response.mimetype.endswith("spreadsheetml.sheet")
        assert (
            "closedloop-report-2025-09-01-2025-09-30.xlsx"
            in response.headers["Content-Disposition"]
        )
        book = load_workbook(io.BytesIO(response.data))
        assert book["Feedback"].max_row == 5
    response.close()


def test_download_refuses_bad_filters(client, auth, make_user):
    auth.sign_in(make_user(Role.MANAGER))
    response = client.get("/reports/excel?from=2025-09-31&lang=fr")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "not a date" in page and "lang" in page
    assert "Traceback" not in page


def test_report_page_links_the_download(client, auth, make_user):
    auth.sign_in(make_user(Role.MANAGER))
    page = client.get("/reports?from=2025-09-01&to=2025-09-30&team=%3Cb%3E").get_data(as_text=True)
    assert 'action="/reports/excel"' in page
    assert 'name="team" value="&lt;b&gt;"' in page
    assert "<b>" not in page


def test_feedback_part_is_well_formed_spreadsheetml(app):
    """The streamed part parses as XML, in the schema's element order, text as inline strings."""
    import zipfile
    from xml.etree import ElementTree

    from improvement.report.stream import sheet_part

    with app.app_context():
        _september(app)
        body = report_bytes(SEPTEMBER)
    with zipfile.ZipFile(io.BytesIO(body)) as package:
        assert package.testzip() is None
        root = ElementTree.fromstring(package.read(sheet_part(package, "Feedback")))
    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    assert [child.tag.removeprefix(main) for child in root] == [
        "sheetPr", "sheetViews", "sheetFormatPr", "cols", "sheetData", "autoFilter",
        "printOptions", "pageMargins", "pageSetup", "headerFooter",
    ]  # fmt: skip
    cells = root.iter(f"{main}c")
    assert {c.get("t") for c in cells} <= {None, "inlineStr"}
    assert not list(root.iter(f"{main}f"))  # no formulas
