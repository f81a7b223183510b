"""The ticket list in headless Chromium: search, page through the results, download them."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from survey_app.extensions import db
from survey_app.models import Role
from tests.conftest import PASSWORD
from tests.root_cause_factories import make_ticket

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Tickets B-0 .. B-3, oldest first; "printer" finds three of them, in any case.
SUBJECTS = ["Printer jam", "Login fails", "打印机 Printer", "PRINTER ink"]


def test_analyst_searches_tickets_pages_through_and_downloads(live_server, page, app, make_user):
    app.config["PAGE_SIZE"] = 2
    for number, subject in enumerate(
        ["Printer jam", "Login fails", "打印机 Printer", "PRINTER ink"]
    ):
        ticket = make_ticket()
        ticket.external_id, ticket.subject = f"B-{number}", subject
        ticket.created_at = datetime(2026, 10, 1 + number, tzinfo=UTC)
    db.session.commit()
    user = make_user(Role.ANALYST)

    page.goto(f"{live_server}/login")
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Tickets").first.click()
    expect(page.get_by_text("Showing 1–2 of 4")).to_be_visible()

    page.get_by_label("Search", exact=True).fill("printer")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_text("Showing 1–2 of 3")).to_be_visible()
    expect(page.get_by_role("link", name="B-3")).to_be_visible()
    expect(page.get_by_role("link", name="B-1")).to_have_count(0)

    page.get_by_role("link", name="Next").click()
    expect(page).to_have_url(re.compile(r"q=printer.*page=2|page=2.*q=printer"))
    expect(page.get_by_text("Showing 3–3 of 3")).to_be_visible()
    expect(page.get_by_role("link", name="B-0")).to_be_visible()
    expect(page.get_by_label("Search", exact=True)).to_have_value("printer")

    page.get_by_role("link", name="Page 1", exact=True).click()
    expect(page.get_by_text("Showing 1–2 of 3")).to_be_visible()

    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV (all pages)").click()
    download = info.value
    assert download.suggested_filename.startswith("closedloop-tickets-")
    with open(download.path(), encoding="utf-8-sig") as handle:
        rows = list(csv.reader(io.StringIO(handle.read())))
    assert [row[0] for row in rows[1:]] == ["B-3", "B-2", "B-0"]
    assert rows[2][1] == "打印机 Printer"
