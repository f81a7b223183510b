"""The query planner's statistics (survey_app.statistics): when they are refreshed, and
what they change on SQLite (the agent's index, not the team's)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from survey_app.background import registered_jobs
from survey_app.extensions import db
from survey_app.statistics import analyse, analyse_if_due
from tests.kpi_data import KpiData

pytestmark = pytest.mark.db

AGENT_QUERY = (
    "SELECT count(*) FROM ticket_sla JOIN ticket ON ticket.id = ticket_sla.ticket_id "
    "WHERE ticket.team = 'Frontline' AND ticket.agent = 'agent-3'"
)


def _tickets(count: int, data: KpiData | None = None) -> None:
    data = data or KpiData()
    for number in range(count):
        data.ticket(team="Frontline", agent=f"agent-{number % 30}")
    db.session.commit()


def _sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


def test_the_job_is_registered(app):
    assert "analyse-database" in [job.name for job in registered_jobs(app)]


def test_analyse_measures_every_table(app):
    _tickets(3)
    tables = analyse()
    assert {"ticket", "survey_response", "metric_rollup_responses"} <= set(tables)
    if _sqlite():
        measured = {row[0] for row in db.session.execute(text("SELECT tbl FROM sqlite_stat1"))}
        assert "ticket" in measured


def test_due_once_big_enough_and_again_after_growth(app):
    data = KpiData()
    _tickets(12, data)
    if not _sqlite():
        assert analyse_if_due(min_rows=10).startswith("not needed")
        return
    assert analyse_if_due(min_rows=100) == "up to date"  # too small to matter
    assert analyse_if_due(min_rows=10).startswith("analysed")
    assert analyse_if_due(min_rows=10) == "up to date"  # measured at 12 tickets
    _tickets(1, data)
    assert analyse_if_due(min_rows=10) == "up to date"  # 13 < 12 × 1.2
    _tickets(2, data)
    assert analyse_if_due(min_rows=10).startswith("analysed")  # 15 ≥ 14.4


def test_statistics_steer_sqlite_to_the_selective_index(app):
    if not _sqlite():
        pytest.skip("SQLite's planner only")
    _tickets(300)

    def plan() -> str:
        rows = db.session.execute(text("EXPLAIN QUERY PLAN " + AGENT_QUERY)).all()
        return " | ".join(str(row[-1]) for row in rows)

    assert "ix_ticket_agent" not in plan()  # without statistics: the team's index
    analyse()
    db.session.execute(text("ANALYZE sqlite_schema"))  # the planner rereads them
    assert "ix_ticket_agent" in plan()


def test_cli(app):
    result = app.test_cli_runner().invoke(args=["db", "analyse"])
    assert result.exit_code == 0, result.output
    assert "Statistics refreshed:" in result.output
