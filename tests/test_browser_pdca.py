"""A PDCA cycle in headless Chromium: plan → approve → Do → Check (computed) → Act."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from improvement.pdca.models import PdcaCycle, Stage
from survey_app.extensions import db
from survey_app.models import Role
from tests.conftest import PASSWORD
from tests.kpi_data import KpiData

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ZONE = ZoneInfo("Asia/Shanghai")


def test_manager_runs_a_full_cycle(app, live_server, page, make_user):
    app.config["METRICS_MIN_SAMPLE"] = 5
    today = datetime.now(ZONE).date()
    kd = KpiData()
    before = datetime.combine(today - timedelta(days=35), time(12), ZONE).astimezone(UTC)
    for score in [5] * 5 + [2] * 5:
        kd.response(kd.ticket(), submitted_at=before, csat_overall=score)
    after = datetime.now(UTC) - timedelta(minutes=1)
    for score in [5] * 9 + [2]:
        kd.response(kd.ticket(), submitted_at=after, csat_overall=score)
    db.session.commit()
    manager = make_user(Role.MANAGER, name="Wang", email="wang@example.com")

    page.goto(f"{live_server}/login")
    page.get_by_label("E-mail").fill(manager.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="PDCA", exact=True).click()
    page.get_by_role("link", name="New cycle").click()

    page.get_by_label("Title").fill("Rosters <follow> the peak")
    page.get_by_label("KPI").select_option("csat_overall_percent")
    page.get_by_label("Baseline from").fill((today - timedelta(days=40)).isoformat())
    page.get_by_label("Baseline to").fill((today - timedelta(days=31)).isoformat())
    page.get_by_label("Target value").fill("80")
    page.get_by_label("Target date").fill((today + timedelta(days=30)).isoformat())
    page.get_by_role("button", name="Open the cycle at Plan").click()

    expect(page.get_by_role("heading", name="Rosters <follow> the peak")).to_be_visible()
    expect(page.get_by_text("50.00").first).to_be_visible()  # the computed baseline
    page.locator("#action-title").fill("Two more agents at peak")
    page.locator("#action-deadline").fill((today + timedelta(days=7)).isoformat())
    page.get_by_role("button", name="Add the action").click()
    page.get_by_role("button", name="Approve the plan").click()
    expect(page.get_by_text("approved by Wang")).to_be_visible()

    page.get_by_role("button", name="Move the cycle").click()  # → Do
    assert page.locator(".pill").inner_text() == "Do"
    page.get_by_label("Move to").select_option("check")
    page.get_by_role("button", name="Move the cycle").click()  # → Check, measured
    verdict = page.locator("[data-verdict]").first
    assert verdict.get_attribute("data-verdict") in ("met", "not_met")
    expect(page.get_by_text("two-proportion z-test")).to_be_visible()

    page.get_by_role("button", name="Move the cycle").click()  # → Act
    page.get_by_label("Decision").select_option("standardise")
    page.get_by_label("What was decided").fill("New roster is the standard")
    page.get_by_role("button", name="Record the decision").click()
    assert page.locator(".pill").inner_text() == "closed"

    db.session.commit()
    cycle = db.session.scalar(select(PdcaCycle))
    assert cycle is not None and cycle.stage is Stage.CLOSED
    assert [c.to_stage for c in cycle.stage_log] == [
        Stage.PLAN,
        Stage.DO,
        Stage.CHECK,
        Stage.ACT,
        Stage.CLOSED,
    ]
    assert cycle.approved_by_id == manager.id
