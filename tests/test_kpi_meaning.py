"""KPI definitions 2026.2 by hand: FCR without reopened tickets, and first-response and
resolution times on both clocks (business hours and elapsed) across a night, a weekend and a
Chinese public holiday; through the engine, the API, the CLI, the PDCA sample and the migration."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from analysis.metrics import ALL_KPIS, DEFINITIONS_VERSION, OVERVIEW_KPIS, Scope, compute
from analysis.metrics.samples import kpi_sample
from analysis.sla.models import TicketSla
from survey_app.extensions import db
from survey_app.models import Role
from tests.kpi_data import KpiData

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

SHANGHAI = ZoneInfo("Asia/Shanghai")
AUTUMN_2026 = Scope(start=date(2026, 9, 1), end=date(2026, 10, 31), timezone="Asia/Shanghai")


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def data(app) -> KpiData:
    return KpiData()


def test_definitions_version_is_2026_2():
    assert DEFINITIONS_VERSION == "2026.2"


# --- FCR ---------------------------------------------------------------------------------------


def test_fcr_excludes_reopened_tickets(data):
    one_day = local(2026, 9, 15, 10, 0)
    for contact_count, reopen_count in [(1, 0), (1, 0), (1, 1), (2, 0), (3, 2)]:
        data.ticket(created_at=one_day, contact_count=contact_count, reopen_count=reopen_count)
    db.session.commit()

    fcr = compute(AUTUMN_2026, metrics=["fcr"]).overall["fcr"]

    # 2 of 5 closed tickets had one contact and were never reopened (the reopened
    # one-contact ticket counted under definitions 2026.1, which gave 60 %).
    assert fcr.value == pytest.approx(40.0)
    assert fcr.n == 5
    # Wilson, z = 1.96, p̂ = 0.4, n = 5: centre 0.78416 / 1.76832, half-width
    # 1.96 / 1.76832 · √(0.048 + 0.038416).
    assert fcr.ci == pytest.approx((11.762, 76.928), abs=5e-3)


def test_fcr_is_a_pdca_proportion_with_the_new_definition(data):
    from improvement.pdca.checks import compare

    day = local(2026, 9, 15, 10, 0)
    for _ in range(3):
        data.ticket(created_at=day, contact_count=1, reopen_count=1)
    data.ticket(created_at=day, contact_count=1, reopen_count=0)
    later = local(2026, 10, 15, 10, 0)
    for _ in range(4):
        data.ticket(created_at=later, contact_count=1, reopen_count=0)
    db.session.commit()
    before = Scope(start=date(2026, 9, 1), end=date(2026, 9, 30), timezone="Asia/Shanghai")
    after = Scope(start=date(2026, 10, 1), end=date(2026, 10, 31), timezone="Asia/Shanghai")

    a, b, result = compare("fcr", before, after)

    assert (a.value, b.value) == (pytest.approx(25.0), pytest.approx(100.0))
    assert result is not None and result.difference == pytest.approx(75.0)


# --- durations on both clocks ------------------------------------------------------------------


def _clock_tickets(data: KpiData) -> None:
    """Four tickets whose times are worked out by hand below (working hours 09:00–18:00,
    Asia/Shanghai, official Chinese calendar)."""
    # A night: P3 opened Tue 2026-09-15 22:00, answered Wed 09:30, resolved Wed 12:00.
    created = local(2026, 9, 15, 22, 0)
    data.ticket(
        priority="P3",
        created_at=created,
        first_response_after=local(2026, 9, 16, 9, 30) - created,
        resolved_after=local(2026, 9, 16, 12, 0) - created,
        closed_after=local(2026, 9, 16, 13, 0) - created,
    )
    # A weekend: P3 opened Fri 2026-09-11 17:00, answered Mon 09-14 10:00, resolved Mon 17:00.
    created = local(2026, 9, 11, 17, 0)
    data.ticket(
        priority="P3",
        created_at=created,
        first_response_after=local(2026, 9, 14, 10, 0) - created,
        resolved_after=local(2026, 9, 14, 17, 0) - created,
        closed_after=local(2026, 9, 14, 18, 0) - created,
    )
    # National Day (1–7 October 2026 off): P4 opened Wed 09-30 17:30, answered Thu 10-08 09:30,
    # resolved 10-08 11:00.
    created = local(2026, 9, 30, 17, 30)
    data.ticket(
        priority="P4",
        created_at=created,
        first_response_after=local(2026, 10, 8, 9, 30) - created,
        resolved_after=local(2026, 10, 8, 11, 0) - created,
        closed_after=local(2026, 10, 8, 12, 0) - created,
    )
    # P1 (a 24×7 clock): opened Tue 09-15 23:00, answered 23:10, resolved Wed 00:30.
    created = local(2026, 9, 15, 23, 0)
    data.ticket(
        priority="P1",
        created_at=created,
        first_response_after=timedelta(minutes=10),
        resolved_after=timedelta(minutes=90),
        closed_after=timedelta(hours=2),
    )
    db.session.commit()


#: Per ticket (night, weekend, holiday, P1): seconds of
#: first response on business hours, elapsed; resolution on business hours, elapsed.
BY_HAND = {
    # night: 09:00–09:30 | 11.5 h | 09:00–12:00 | 14 h
    "night": (1800, 41400, 10800, 50400),
    # weekend: Fri 17–18 + Mon 9–10 | 65 h | Fri 17–18 + Mon 9–17 | 72 h
    "weekend": (7200, 234000, 32400, 259200),
    # holiday: 09-30 17:30–18:00 + 10-08 09:00–09:30 | 7 d 16 h | + 10-08 09:30–11:00 | 7 d 17.5 h
    "holiday": (3600, 662400, 9000, 667800),
    # P1 on 24×7: both clocks agree.
    "p1": (600, 600, 5400, 5400),
}


def test_sla_facts_store_both_clocks(data):
    _clock_tickets(data)
    facts = db.session.scalars(select(TicketSla).order_by(TicketSla.ticket_id)).all()
    got = [
        (
            f.first_response_seconds,
            f.first_response_elapsed_seconds,
            f.resolution_seconds,
            f.resolution_elapsed_seconds,
        )
        for f in facts
    ]
    assert got == [BY_HAND["night"], BY_HAND["weekend"], BY_HAND["holiday"], BY_HAND["p1"]]


def test_durations_on_both_clocks_by_hand(data):
    _clock_tickets(data)

    kpis = compute(AUTUMN_2026).overall

    # Sorted values x1..x4; median h = 2.5, P90 h = 3.7 (linear interpolation).
    expected = {
        # business hours [600, 1800, 3600, 7200]
        "first_response_time_mean": 13200 / 4,
        "first_response_time_median": 1800 + 0.5 * (3600 - 1800),
        "first_response_time_p90": 3600 + 0.7 * (7200 - 3600),
        # elapsed [600, 41400, 234000, 662400]
        "first_response_time_elapsed_mean": 938400 / 4,
        "first_response_time_elapsed_median": 41400 + 0.5 * (234000 - 41400),
        "first_response_time_elapsed_p90": 234000 + 0.7 * (662400 - 234000),
        # business hours [5400, 9000, 10800, 32400]
        "resolution_time_mean": 57600 / 4,
        "resolution_time_median": 9000 + 0.5 * (10800 - 9000),
        "resolution_time_p90": 10800 + 0.7 * (32400 - 10800),
        # elapsed [5400, 50400, 259200, 667800]
        "resolution_time_elapsed_mean": 982800 / 4,
        "resolution_time_elapsed_median": 50400 + 0.5 * (259200 - 50400),
        "resolution_time_elapsed_p90": 259200 + 0.7 * (667800 - 259200),
    }
    assert {name: kpis[name].value for name in expected} == pytest.approx(expected)
    assert expected["first_response_time_median"] == 2700
    assert expected["first_response_time_elapsed_median"] == 137700
    for name in expected:
        assert kpis[name].n == 4
        assert kpis[name].unit == "seconds"


def test_durations_on_both_clocks_grouped_by_priority(data):
    _clock_tickets(data)

    groups = {
        g.key["priority"]: g.kpis
        for g in compute(AUTUMN_2026, group_by="priority", metrics=OVERVIEW_KPIS).groups
    }

    # P3: night and weekend; P4: the holiday; P1: both clocks agree.
    # Two values: P90 h = 1.9.
    assert groups["P3"]["first_response_time_p90"].value == pytest.approx(1800 + 0.9 * 5400)
    assert groups["P3"]["first_response_time_elapsed_p90"].value == pytest.approx(
        41400 + 0.9 * (234000 - 41400)
    )
    assert groups["P4"]["first_response_time_p90"].value == 3600
    assert groups["P4"]["first_response_time_elapsed_p90"].value == 662400
    assert groups["P1"]["first_response_time_p90"].value == 600
    assert groups["P1"]["first_response_time_elapsed_p90"].value == 600


def test_pdca_sample_of_an_elapsed_duration(data):
    _clock_tickets(data)
    assert sorted(kpi_sample(AUTUMN_2026, "first_response_time_elapsed_median")) == [
        600.0,
        41400.0,
        234000.0,
        662400.0,
    ]
    assert sorted(kpi_sample(AUTUMN_2026, "resolution_time_p90")) == [
        5400.0,
        9000.0,
        10800.0,
        32400.0,
    ]


def test_api_and_cli_answer_both_clocks_with_the_version(auth, client, make_user, runner, data):
    _clock_tickets(data)
    auth.login(make_user(Role.ANALYST))

    body = client.get("/api/v1/metrics?from=2026-09-01&to=2026-10-31").get_json()

    assert body["definitions_version"] == "2026.2"
    assert set(body["overall"]) == set(ALL_KPIS)
    assert body["overall"]["first_response_time_median"]["value"] == 2700
    assert body["overall"]["first_response_time_elapsed_median"]["value"] == 137700
    assert body["overall"]["resolution_time_elapsed_p90"]["value"] == 545220
    result = runner.invoke(args=["metrics", "--from", "2026-09-01", "--to", "2026-10-31"])
    assert result.exit_code == 0, result.output
    assert "definitions 2026.2" in result.output.splitlines()[0]
    lines = result.output.splitlines()
    assert any(
        line.split()[:2] == ["first_response_time_elapsed_median", "137700"] for line in lines
    )
    assert any(line.split()[:2] == ["first_response_time_median", "2700"] for line in lines)
    as_json = runner.invoke(
        args=["metrics", "--from", "2026-09-01", "--to", "2026-10-31", "--json"]
    )
    assert json.loads(as_json.output) == body


def test_dashboard_cards_show_both_clocks(auth, client, make_user, data):
    _clock_tickets(data)
    auth.login(make_user(Role.ANALYST))
    page = client.get("/dashboards?from=2026-09-01&to=2026-10-31")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "First response P90, business hours" in text
    assert "First response P90, elapsed" in text


def test_heatmap_cells_and_csv_carry_both_clocks(auth, client, make_user, data):
    from analysis.dashboards import heatmap

    _clock_tickets(data)
    grid = heatmap.frt_heatmap(AUTUMN_2026)

    night = grid[1][22]  # Tuesday 22:00 local
    assert (night.n, night.mean_seconds, night.mean_elapsed_seconds) == (1, 1800, 41400)
    holiday = grid[2][17]  # Wednesday 17:00 local (30 September)
    assert (holiday.mean_seconds, holiday.mean_elapsed_seconds) == (3600, 662400)
    auth.login(make_user(Role.ANALYST))
    csv = client.get("/dashboards/export?table=heatmap&from=2026-09-01&to=2026-10-31")
    lines = csv.get_data(as_text=True).splitlines()
    assert lines[0].endswith("mean_first_response_seconds,mean_first_response_elapsed_seconds")
    assert [line for line in lines if line.startswith("2,22,")] == ["2,22,1,1800.0,41400.0"]


# --- the migration -----------------------------------------------------------------------------


@pytest.mark.real_db
def test_migration_fills_elapsed_seconds_of_existing_facts(make_app, tmp_path):
    """c81d3e5a7f42 adds the elapsed columns and fills them from the tickets' timestamps."""
    import flask_migrate

    from survey_app.models import Channel, Customer, Priority, Ticket, TicketStatus

    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'old.sqlite3'}")
    with app.app_context():
        flask_migrate.upgrade(revision="f4b79c44e18e")
        customer = Customer(source="test", external_id="C1")
        created = local(2026, 9, 30, 17, 30)
        answered = Ticket(
            source="test",
            external_id="T1",
            customer=customer,
            channel=Channel.CHAT,
            priority=Priority.P4,
            status=TicketStatus.CLOSED,
            created_at=created,
            first_response_at=local(2026, 10, 8, 9, 30),
            resolved_at=local(2026, 10, 8, 11, 0),
            closed_at=local(2026, 10, 8, 12, 0),
        )
        # Closed without a first response or a resolution: both count the close.
        silent = Ticket(
            source="test",
            external_id="T2",
            customer=customer,
            channel=Channel.CHAT,
            priority=Priority.P1,
            status=TicketStatus.CLOSED,
            created_at=created,
            closed_at=created + timedelta(minutes=45),
        )
        db.session.add_all([answered, silent])
        db.session.commit()
        facts = TicketSla.__table__
        for ticket in (answered, silent):
            db.session.execute(
                facts.insert().values(
                    {
                        facts.c.ticket_id: ticket.id,
                        facts.c.closed_at: ticket.closed_at,
                        facts.c.priority: ticket.priority,
                        facts.c.clock: "24x7",
                        facts.c.first_response_target_minutes: 15,
                        facts.c.resolution_target_minutes: 120,
                        facts.c.computed_at: ticket.closed_at,
                    }
                )
            )
        db.session.commit()

        flask_migrate.upgrade()

        rows = db.session.execute(
            select(
                facts.c.ticket_id,
                facts.c.first_response_elapsed_seconds,
                facts.c.resolution_elapsed_seconds,
            ).order_by(facts.c.ticket_id)
        ).all()
        assert [tuple(row) for row in rows] == [
            (answered.id, 662400, 667800),
            (silent.id, 2700, 2700),
        ]
        db.session.remove()
        db.engine.dispose()


def test_excel_report_has_both_clocks_and_the_new_fcr(app, data):
    import io

    from openpyxl import load_workbook

    from improvement.report.workbook import report_bytes

    _clock_tickets(data)
    book = load_workbook(io.BytesIO(report_bytes(AUTUMN_2026, language="en")))

    summary = book.worksheets[0]
    rows = {summary.cell(row=r, column=12).value: r for r in range(11, 11 + len(ALL_KPIS))}
    assert summary["B6"].value == "2026.2"
    for name, value in [
        ("first_response_time_median", 2700),
        ("first_response_time_elapsed_median", 137700),
        ("resolution_time_elapsed_p90", 545220),
        ("fcr", 100.0),
    ]:
        shown = summary.cell(row=rows[name], column=2).value
        if isinstance(shown, timedelta):  # durations are Excel times, shown as h:mm
            shown = shown.total_seconds()
        assert shown == pytest.approx(value), name
    assert summary.cell(row=rows["first_response_time_elapsed_median"], column=1).value == (
        "First response, elapsed, median (h:mm)"
    )
    definitions = book.worksheets[-1]
    formulas = {
        definitions.cell(row=r, column=2).value: definitions.cell(row=r, column=4).value
        for r in range(6, 6 + len(ALL_KPIS))
    }
    assert "reopen_count = 0" in formulas["fcr"]
    assert "elapsed" in formulas["first_response_time_elapsed_p90"]
    trends = book.worksheets[1]
    headers = [cell.value for cell in trends[2]]
    assert "First response P90, elapsed" in headers or any("elapsed" in str(h) for h in headers)


def test_targets_offer_both_clocks(app):
    from analysis.targets.labels import KPI_LABELS, format_value, kpi_unit
    from analysis.targets.status import direction_of
    from improvement.pdca.checks import LOWER_IS_BETTER

    for name in ("first_response_time_elapsed_p90", "resolution_time_elapsed_median"):
        assert name in ALL_KPIS
        assert direction_of(name) == "lower"
        assert kpi_unit(name) == "seconds"
        assert name in LOWER_IS_BETTER
        assert format_value(name, 41400.4) == "11.5 h"
        assert format_value(name, 1710) == "28.5 min"
    assert str(KPI_LABELS["first_response_time_p90"]) == "First response, business hours, P90 (s)"
    assert str(KPI_LABELS["first_response_time_elapsed_p90"]) == "First response, elapsed, P90 (s)"
