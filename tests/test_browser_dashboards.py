"""The quality dashboard in headless Chromium: an analyst opens it, the plotly charts render
(plotly.js served by the app), a filter changes the URL and the numbers, a breakdown row
drills down to its responses; at a desktop and a phone width the filter bar sticks, folds
and the page does not scroll sideways."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from analysis.dashboards import services
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


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (390, 844)], ids=["desktop", "phone"])
def test_sections_and_a_sticky_filter_bar(live_server, browser, app, make_user, width, height):
    """At a desktop and a phone width: the charts draw (the CI band, PDCA markers), the page
    has no sideways scroll, the filter bar stays in view at the bottom of the page, the
    Filters button folds and unfolds it from the keyboard, a section link scrolls to its
    section without hiding its heading under the bar."""
    data = KpiData()
    start = utcnow() - timedelta(days=20)
    for day in range(20):
        for score in (10, 3, 7):
            ticket = data.ticket(created_at=start + timedelta(days=day))
            data.response(
                ticket,
                submitted_at=start + timedelta(days=day, hours=2),
                nps=score,
                csat_overall=5 if score > 8 else 2,
                csat_speed=4,
                comment="slow reply" if score < 7 else "great",
            )
    marked = (start + timedelta(days=4)).date()
    app.extensions.setdefault(services.TIMELINE_MARKERS_HOOK, []).append(
        lambda scope: [
            (marked, "Do: night-shift rota"),
            (marked, "Done: callback script"),
            (marked + timedelta(days=1), "Check: night-shift rota"),
        ]
    )
    db.session.commit()
    user = make_user(Role.ANALYST, name="Lin")
    context = browser.new_context(locale="en-US", viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        page.goto(f"{live_server}/login")
        page.get_by_label("E-mail").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Dashboard").click()
        page.wait_for_url("**/dashboards")
        period = f"from={(start - timedelta(days=1)).date()}&to={utcnow().date()}&grain=day"
        page.goto(f"{live_server}/dashboards?{period}")

        expect(page.locator('[data-figure="figure-csat_trend"] .main-svg').first).to_be_visible()
        assert page.locator(".js-plotly-plot").count() >= 6
        # The CI band is a filled area; the markers of one day share one label.
        expect(page.locator('[data-figure="figure-csat_trend"] .js-fill').first).to_be_attached()
        expect(
            page.locator('[data-figure="figure-nps_trend"] .annotation-text').first
        ).to_contain_text("+1")

        bar = page.locator("#dash-bar")
        toggle = bar.get_by_role("button", name="Filters")
        if width < 600:  # a phone: the bar starts folded to the period and the button
            expect(toggle).to_be_visible()
            expect(page.locator("#f-from")).to_be_hidden()
        else:  # in the page, the bar shows every filter
            expect(toggle).to_be_hidden()
            expect(page.locator("#f-team")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        page.wait_for_function("window.scrollY > 0")
        expect(toggle).to_be_in_viewport()  # stuck at the top, folded
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(page.locator("#f-team")).to_be_hidden()
        box = bar.bounding_box()
        assert box is not None and -1 < box["y"] < 1 and box["height"] < height / 4
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        toggle.focus()
        page.keyboard.press("Enter")
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(page.locator("#f-team")).to_be_in_viewport()
        expect(page.locator("#f-from")).to_be_in_viewport()
        page.keyboard.press("Escape")
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(toggle).to_be_focused()
        expect(page.locator("#f-team")).to_be_hidden()

        bar.get_by_role("link", name="Drivers").click()
        page.wait_for_url("**#sec-drivers")
        heading = page.get_by_role("heading", name="What drives NPS")
        expect(heading).to_be_in_viewport()
        heading_box = heading.bounding_box()
        bar_box = bar.bounding_box()
        assert heading_box is not None and bar_box is not None
        assert heading_box["y"] >= bar_box["y"] + bar_box["height"] - 1  # not under the bar
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()
