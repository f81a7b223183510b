"""A PDCA cycle in headless Chromium: plan → approve → Do → Check (computed) → Act; and the
stage rules on a desktop and a phone: a refused move shows its reasons, the legal one
works, a short Check window offers a schedule or a Check anyway, Act asks what happens to
the open actions."""

from __future__ import annotations

import re
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

    page.get_by_role("button", name="Move to Do").click()
    assert page.locator(".pill").inner_text() == "Do"
    page.get_by_role("button", name="Move to Check").click()  # measured
    verdict = page.locator("[data-verdict]").first
    assert verdict.get_attribute("data-verdict") in ("met", "not_met")
    expect(page.get_by_text("two-proportion z-test")).to_be_visible()

    page.get_by_role("button", name="Move to Act").click()
    page.get_by_label("Decision").select_option("standardise")
    page.get_by_label("What was decided").fill("New roster is the standard")
    page.get_by_label("keep open, to be finished later").check()  # the action is open
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


DESKTOP = {"viewport": {"width": 1366, "height": 768}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_stage_rules_guide_the_manager(app, live_server, browser, make_user, device):
    from improvement.pdca.plan import PlanInput, create_cycle

    app.config["METRICS_MIN_SAMPLE"] = 5
    today = datetime.now(ZONE).date()
    kd = KpiData()
    before = datetime.combine(today - timedelta(days=35), time(12), ZONE).astimezone(UTC)
    for score in [5] * 5 + [2] * 5:
        kd.response(kd.ticket(), submitted_at=before, csat_overall=score)
    manager = make_user(Role.MANAGER, name="Wang", email="wang@example.com")
    cycle = create_cycle(
        PlanInput(
            title="Rosters follow the peak",
            owner=manager,
            kpi="csat_overall_percent",
            baseline_start=today - timedelta(days=40),
            baseline_end=today - timedelta(days=31),
            target_value=80.0,
            target_date=today + timedelta(days=30),
        ),
        manager,
    )
    db.session.commit()

    context = browser.new_context(locale="en-US", **device)
    try:
        page = context.new_page()
        page.goto(f"{live_server}/login")
        page.get_by_label("E-mail").fill(manager.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"{live_server}/pdca/{cycle.id}")
        width = device["viewport"]["width"]

        # Plan, no action yet: approving and moving are refused, each with its reasons.
        stage = page.locator("#stage")
        expect(stage.get_by_role("button", name="Approve the plan")).to_be_disabled()
        expect(stage.get_by_role("button", name="Move to Do")).to_be_disabled()
        expect(stage.get_by_role("button", name="Move to Check")).to_have_count(0)
        expect(stage.get_by_role("button", name="Move to Do")).to_have_accessible_description(
            re.compile("at least one action.*approval of the plan")
        )
        expect(stage.get_by_text("Do needs a manager's approval of the plan.")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width

        page.locator("#action-title").fill("Two more agents at peak")
        page.locator("#action-deadline").fill((today + timedelta(days=7)).isoformat())
        page.get_by_role("button", name="Add the action").click()
        expect(stage.get_by_text("Do needs a manager's approval of the plan.")).to_be_visible()
        stage.get_by_role("button", name="Approve the plan").click()
        expect(stage.get_by_role("button", name="Move to Do")).to_be_enabled()
        stage.get_by_role("button", name="Move to Do").click()
        expect(page.locator(".pill")).to_have_text("Do")

        # Do, nothing measured since: Check is refused with the count, and offered later.
        expect(stage.get_by_role("button", name="Move to Check")).to_be_disabled()
        expect(stage.get_by_text("has 0 of the 5 observations the Check needs")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        scheduled = (today + timedelta(days=14)).isoformat()
        stage.get_by_label("Check on").fill(scheduled)
        stage.get_by_role("button", name="Schedule the Check").click()
        expect(page.get_by_text(f"Check scheduled for {scheduled}")).to_be_visible()

        # Check anyway, with the reason.
        stage.get_by_text("Check now anyway").first.click()
        stage.get_by_label("Why the Check cannot wait").fill("The director asks on Friday")
        stage.get_by_role("button", name="Check now anyway").click()
        expect(page.locator(".pill")).to_have_text("Check")
        expect(page.locator("[data-verdict]").first).to_have_attribute(
            "data-verdict", "not_enough_data"
        )
        expect(
            page.get_by_text("Checked before the window had the minimum sample")
        ).to_be_visible()

        # Act with the action still open: the question is asked and must be answered.
        stage.get_by_role("button", name="Move to Act").click()
        expect(stage.get_by_text("Actions still open: 1. What happens to them?")).to_be_visible()
        stage.get_by_label("Decision").select_option("adjust")
        stage.get_by_role("button", name="Record the decision").click()  # no answer: stays
        expect(page.locator(".pill")).to_have_text("Act")
        stage.get_by_label("cancel", exact=True).check()
        stage.get_by_role("button", name="Record the decision").click()
        expect(page.locator(".pill")).to_have_text("closed")
        expect(page.get_by_text("Open actions cancelled: 1.")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        context.close()

    db.session.commit()
    stored = db.session.get(PdcaCycle, cycle.id)
    assert stored is not None and stored.stage is Stage.CLOSED
    assert [a.status.value for a in stored.actions] == ["cancelled"]
