"""Root-cause flow in headless Chromium: triage queue → case → root cause → 5 Why chain."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from improvement.root_causes.models import FeedbackCase, RootCause, WhyStep
from survey_app.extensions import db
from survey_app.models import Role
from survey_app.surveys.models import SentimentLabel
from tests.conftest import PASSWORD
from tests.root_cause_factories import analyse, make_response

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_analyst_triages_a_case_and_records_a_five_why_chain(live_server, page, make_user):
    response = make_response(nps=2, csat_speed=1, comment="电话一直排队，体验很差")
    analyse(response, label=SentimentLabel.NEGATIVE, score=0.08, keywords=["排队", "电话"],
            problem_type="slow_response")  # fmt: skip
    case = db.session.scalar(select(FeedbackCase))
    assert case is not None
    user = make_user(Role.ANALYST, name="Lin")

    page.goto(f"{live_server}/login")
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Cases").click()
    expect(page.get_by_text("电话一直排队，体验很差")).to_be_visible()

    page.get_by_role("link", name=f"#{case.id}", exact=True).click()
    expect(page.get_by_role("heading", name=f"Case #{case.id}")).to_be_visible()
    page.get_by_label("Title").fill("Peak-hour rosters too thin")
    page.get_by_role("button", name="Create and link").click()

    expect(page.get_by_role("heading", name="Peak-hour rosters too thin")).to_be_visible()
    for statement, category in (
        ("Customers queue for over 3 minutes", "process"),
        ("Volume is not measured per hour", "measurement"),
        ("Rosters follow the daily average", "management"),
    ):
        page.locator("#statement").fill(statement)
        page.locator("#category").select_option(category)
        page.get_by_role("button", name="Add why").click()
    page.get_by_role("button", name="Move why 3 up").click()

    items = page.locator("ol.whys > li").all_inner_texts()
    assert [text.split("\n")[0].strip() for text in items] == [
        "process Customers queue for over 3 minutes",
        "management Rosters follow the daily average",
        "measurement Volume is not measured per hour",
    ]
    fishbone = page.locator("svg.fishbone")
    bone = fishbone.locator('g[data-category="management"]')
    assert bone.locator("text.bone-item").first.text_content().startswith("2. Rosters follow")
    head = fishbone.locator("text.head-text").all_text_contents()
    assert head == ["Peak-hour rosters", "too thin"]

    db.session.commit()  # end the test's snapshot: see what the server wrote
    root_cause = db.session.scalar(select(RootCause))
    assert root_cause is not None
    assert db.session.get(FeedbackCase, case.id).root_cause_id == root_cause.id
    steps = db.session.scalars(select(WhyStep).order_by(WhyStep.position)).all()
    assert [(s.position, s.category) for s in steps] == [
        (1, "process"),
        (2, "management"),
        (3, "measurement"),
    ]
