"""The quality dashboard in headless Chromium: an analyst opens it, the plotly charts render
(plotly.js served by the app), a filter changes the URL and the numbers, a breakdown row
drills down to its responses."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from survey_app.extensions import db
from survey_app.models import Role
from survey_app.types import utcnow
from tests.conftest import PASSWORD
from tests.kpi_data import KpiData

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_analyst_filters_the_dashboard_and_drills_down(live_server, page, make_user):
    data = KpiData()
    yesterday = utcnow() - timedelta(days=1)
    for team, agent, scores, comment in (
        ("Frontline", "王芳", (10, 5), "Fast and friendly"),
        ("Frontline", "王芳", (9, 4), "Solved quickly"),
        ("Backline", "李雷", (2, 1), "<i>Waited</i> two days for a reply"),
    ):
        ticket = data.ticket(team=team, agent=agent, created_at=yesterday - timedelta(hours=3))
        data.response(
            ticket, submitted_at=yesterday, nps=scores[0], csat_overall=scores[1], comment=comment
        )
    db.session.commit()
    user = make_user(Role.ANALYST, name="Lin")

    page.goto(f"{live_server}/login")
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url("**/dashboards")  # the click only starts the navigation

    expect(page.get_by_role("heading", name="Quality dashboard")).to_be_visible()
    page.wait_for_selector('[data-figure="figure-nps_trend"] .main-svg')
    assert page.locator(".js-plotly-plot .main-svg").count() >= 6
    assert page.locator('[data-kpi="nps"] .stat__value').inner_text().startswith("33.3")

    page.locator("#f-team").select_option("Backline")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_selector('[data-figure="figure-nps_trend"] .main-svg')
    assert parse_qs(urlsplit(page.url).query)["team"] == ["Backline"]
    assert page.locator('[data-kpi="nps"] .stat__value').inner_text().startswith("-100.0")

    row = page.locator("table.dash-breakdown tbody tr", has_text="Backline")
    row.get_by_role("link", name="Responses").click()
    page.wait_for_url("**/dashboards/responses?**")
    expect(page.get_by_role("heading", name="Responses")).to_be_visible()
    comment = page.locator("td.dash-comment").first
    assert comment.inner_text() == "<i>Waited</i> two days for a reply"
    assert page.locator("td.dash-comment i").count() == 0
    assert "Fast and friendly" not in page.content()
