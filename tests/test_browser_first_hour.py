"""The first hour in headless Chromium: a closed ticket's survey e-mail lands in the
development outbox, the admin opens it, follows its link, answers as the customer, and
sees the answer on the ticket page."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from survey_app.extensions import db
from survey_app.models import Role, User
from survey_app.surveys.invitations import dispatch_due
from survey_app.types import utcnow
from tests.conftest import PASSWORD, Webhook, event_payload

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.real_db]

ADMIN = "admin@example.com"


@pytest.fixture
def outbox_site(make_app: Callable[..., Flask]) -> Iterator[tuple[Flask, str]]:
    """An app with the outbox, served on a free port that it knows as PUBLIC_URL."""
    from werkzeug.serving import make_server

    app = make_app(MAIL_BACKEND="outbox", MAIL_DEFAULT_SENDER="feedback@example.com")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_URL"] = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with app.app_context():
            yield app, url
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def close_a_ticket(app: Flask) -> None:
    """A ticket closed two hours ago for an English-speaking customer, and a staff admin."""
    closed = utcnow() - timedelta(hours=2)
    opened = closed - timedelta(hours=3)
    payload = event_payload(
        ticket={"external_id": "T-2001", "created_at": opened.isoformat(),
                "first_response_at": opened.isoformat(), "resolved_at": closed.isoformat(),
                "closed_at": closed.isoformat()},
        customer={"external_id": "C-2001", "email": "lee@example.com", "language": "en"},
    )  # fmt: skip
    assert Webhook(app.test_client()).post(payload).status_code == 201
    admin = User(email=ADMIN, role=Role.ADMIN, name="Admin")
    admin.set_password(PASSWORD)
    db.session.add(admin)
    db.session.commit()


def test_a_survey_mail_in_the_outbox_is_answered_and_shows_on_the_ticket(
    outbox_site: tuple[Flask, str], page: Any
) -> None:
    app, url = outbox_site
    close_a_ticket(app)
    assert dispatch_due().sent == 1  # what the background thread of `make run` does

    page.goto(f"{url}/login")
    page.get_by_label("E-mail").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Outbox").click()
    expect(page.get_by_role("heading", name="Outbox", level=1)).to_be_visible()
    expect(page.get_by_role("cell", name="lee@example.com")).to_be_visible()

    page.get_by_role("link", name="How did we do with request T-2001?").click()
    expect(page.get_by_role("heading", name="How did we do with request T-2001?")).to_be_visible()
    expect(page.get_by_text("List-Unsubscribe", exact=True)).to_be_visible()
    mail = page.frame_locator("iframe.outbox-html")
    expect(mail.get_by_role("link", name="Answer the survey")).to_be_visible()
    page.locator("iframe.outbox-html").screenshot(path="/tmp/outbox-frame.png")

    # The customer taps "4" in the e-mail: the survey opens in a new tab with it filled in.
    with page.context.expect_page() as opened:
        mail.get_by_role("link", name="4", exact=True).click()
    survey = opened.value
    expect(survey).to_have_url(re.compile(re.escape(f"{url}/s/") + r".+\?csat_overall=4$"))
    overall = survey.get_by_role("group", name=re.compile("overall", re.IGNORECASE))
    expect(overall.get_by_label("4", exact=True)).to_be_checked()
    survey.get_by_label(re.compile("What could we improve")).fill("Quick and friendly")
    survey.get_by_role("button", name="Send my answers").click()
    expect(survey.get_by_role("heading", name="Thank you!")).to_be_visible()
    survey.close()

    page.goto(f"{url}/tickets")
    page.get_by_role("link", name="T-2001").click()
    answers = page.locator(".survey-record")
    expect(answers.get_by_text("Answered", exact=True)).to_be_visible()
    expect(answers.locator("dt:has-text('Overall CSAT') + dd")).to_have_text("4")
    expect(answers.get_by_text("Quick and friendly")).to_be_visible()
