"""The customer in headless Chromium: the e-mail arrives, they open its link and answer.

The app is served on a loopback port and its ``PUBLIC_URL`` is that address,
so the links in the mail (delivered to a real SMTP server) point at it.
"""

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
from survey_app.surveys.invitations import dispatch_due
from survey_app.surveys.models import Answer, Question, SurveyResponse
from survey_app.types import utcnow
from tests.conftest import Mailbox, Webhook, event_payload

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


class SurveySite:
    """The served app, its mailbox, and a way to get a survey mailed to a customer."""

    def __init__(self, app: Flask, url: str, mailbox: Mailbox) -> None:
        self.app, self.url, self.mailbox = app, url, mailbox
        self._customers = iter(range(1, 1000))

    def mail_survey(self, language: str = "zh-CN") -> str:
        """Close a ticket for a new customer, run the dispatcher, return the mailed link."""
        return self.mail(language)[0]

    def mail(self, language: str = "zh-CN") -> tuple[str, Any]:
        """Like :meth:`mail_survey`; also return the message."""
        n = next(self._customers)
        closed = (utcnow() - timedelta(hours=2)).isoformat()
        created = (utcnow() - timedelta(hours=5)).isoformat()
        payload = event_payload(
            ticket={"external_id": f"T-{n}", "created_at": created, "first_response_at": created,
                    "resolved_at": closed, "closed_at": closed},
            customer={"external_id": f"C-{n}", "email": f"c{n}@example.com", "language": language},
        )  # fmt: skip
        assert Webhook(self.app.test_client()).post(payload).status_code == 201
        before = len(self.mailbox.messages)
        assert dispatch_due().sent == 1
        message = self.mailbox.messages[before]
        assert message["To"] == f"c{n}@example.com"
        text = message.get_body(preferencelist=("plain",)).get_content()
        match = re.search(rf"({re.escape(self.url)}/s/[A-Za-z0-9_.\-]+)\s", text)
        assert match, text
        return match.group(1), message


@pytest.fixture
def site(make_app: Callable[..., Flask], smtp_server: tuple[str, int, Mailbox]) -> Iterator[Any]:
    """An app that mails through ``smtp_server``, served on a free port it knows as PUBLIC_URL."""
    from werkzeug.serving import make_server

    host, port, mailbox = smtp_server
    app = make_app(MAIL_SERVER=host, MAIL_PORT=port, MAIL_DEFAULT_SENDER="feedback@example.com")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_URL"] = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with app.app_context():
            yield SurveySite(app, url, mailbox)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def question(key: str, locale: str) -> str:
    found = db.session.scalar(db.select(Question).where(Question.key == key).limit(1))
    return found.text_for(locale)


def stored() -> SurveyResponse:
    db.session.commit()  # a fresh snapshot: the served app wrote the response
    responses = db.session.scalars(db.select(SurveyResponse)).all()
    assert len(responses) == 1
    return responses[0]


def no_horizontal_overflow(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def submit(page: Any) -> None:
    page.locator("form.survey-form button[type=submit]").click()


def expect_thanks(page: Any, link: str) -> None:
    # A fragment (from the error summary's links) survives the redirect; it does no harm.
    expect(page).to_have_url(re.compile(re.escape(f"{link}/thanks") + "(#.*)?$"))


def test_chinese_customer_answers_from_the_email(site, browser):
    link = site.mail_survey("zh-CN")
    context = browser.new_context(locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(link)
        assert page.locator("html").get_attribute("lang") == "zh-Hans"
        overall = page.get_by_role("group", name=question("csat_overall", "zh_Hans"))
        overall.get_by_label("4", exact=True).check()
        nps = page.get_by_role("group", name=re.compile(re.escape(question("nps", "zh_Hans"))))
        nps.get_by_label("9", exact=True).check()
        comment = page.get_by_label(re.compile(re.escape(question("comment", "zh_Hans"))))
        comment.fill("客服很耐心，<b>谢谢</b>")
        assert page.locator("#comment-count").inner_text().startswith("15 /")
        submit(page)

        expect_thanks(page, link)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        response = stored()
        assert (response.csat_overall, response.nps, response.comment) == (
            4,
            9,
            "客服很耐心，<b>谢谢</b>",
        )
        assert response.language == "zh_Hans"

        # The link is spent: opening it again says so, and offers no form.
        page.goto(link)
        assert page.locator("form.survey-form").count() == 0
        assert page.get_by_role("heading", level=1).inner_text() != ""
    finally:
        context.close()


def test_english_customer_answers_on_a_phone(site, browser):
    link = site.mail_survey("en")
    context = browser.new_context(locale="en-US", **PHONE)
    try:
        page = context.new_page()
        page.goto(link)
        assert page.locator("html").get_attribute("lang") == "en"
        expect(page.get_by_role("heading", name="How did we do?")).to_be_visible()
        no_horizontal_overflow(page)
        page.screenshot(path="/tmp/survey-phone-en.png", full_page=True)

        page.get_by_role("group", name=question("csat_overall", "en")).get_by_label(
            "5, Very satisfied"
        ).tap()
        nps = page.get_by_role("group", name=re.compile(re.escape(question("nps", "en"))))
        nps.get_by_label("0, Not at all likely").tap()
        ces = page.get_by_role("group", name=re.compile(re.escape(question("ces", "en"))))
        ces.get_by_label("6", exact=True).tap()
        page.get_by_role("button", name="Send my answers").tap()

        expect_thanks(page, link)
        expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
        no_horizontal_overflow(page)
        response = stored()
        assert (response.csat_overall, response.nps, response.ces, response.csat_speed) == (
            5,
            0,
            6,
            None,
        )
    finally:
        context.close()


def test_a_mistake_on_a_phone_keeps_the_answers_and_says_what_to_fix(site, browser):
    link = site.mail_survey("zh-CN")
    context = browser.new_context(locale="zh-CN", **PHONE)
    try:
        page = context.new_page()
        page.goto(link)
        comment = page.get_by_label(re.compile(re.escape(question("comment", "zh_Hans"))))
        comment.fill("太慢了")
        submit(page)  # the required first question is unanswered

        summary = page.get_by_role("alert")
        assert question("csat_overall", "zh_Hans") in summary.inner_text()
        # Focus moves to the summary, whose link leads to the question.
        expect(page.locator("#form-errors")).to_be_focused()
        summary.get_by_role("link").click()
        expect(page.locator("#csat_overall-0")).to_be_focused()
        page.screenshot(path="/tmp/survey-phone-zh-error.png", full_page=True)
        no_horizontal_overflow(page)
        comment = page.get_by_label(re.compile(re.escape(question("comment", "zh_Hans"))))
        assert comment.input_value() == "太慢了"
        page.get_by_role("group", name=question("csat_overall", "zh_Hans")).get_by_label(
            "2", exact=True
        ).tap()
        submit(page)
        expect_thanks(page, link)
        assert (stored().csat_overall, stored().comment) == (2, "太慢了")
    finally:
        context.close()


def test_keyboard_only(site, browser):
    link = site.mail_survey("en")
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        page.goto(link)

        def tab_to(name: str) -> None:
            for _ in range(60):
                page.keyboard.press("Tab")
                if page.evaluate("document.activeElement.name") == name:
                    return
            raise AssertionError(f"Tab never reached {name}")

        tab_to("csat_overall")
        for _ in range(3):
            page.keyboard.press("ArrowRight")  # 1 -> 4, each arrow selects
        assert page.evaluate("document.activeElement.value") == "4"
        # The focused option is visibly marked.
        outline = page.evaluate(
            "getComputedStyle(document.activeElement.nextElementSibling).outlineStyle"
        )
        assert outline not in ("", "none")
        tab_to("csat_speed")
        page.keyboard.press("Space")  # the first option of an untouched group
        tab_to("comment")
        page.keyboard.type("Fast and friendly.")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.type") == "submit"
        page.keyboard.press("Enter")

        expect_thanks(page, link)
        response = stored()
        assert (response.csat_overall, response.csat_speed, response.comment) == (
            4,
            1,
            "Fast and friendly.",
        )
        skipped = db.session.scalars(db.select(Answer.question_key).where(Answer.skipped)).all()
        assert set(skipped) == {
            "csat_professionalism",
            "csat_attitude",
            "csat_effectiveness",
            "nps",
            "ces",
        }
    finally:
        context.close()


def test_without_javascript_and_switching_language(site, browser):
    link = site.mail_survey("zh-CN")
    context = browser.new_context(locale="zh-CN", java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(link + "?csat_overall=3")  # a one-click link of the e-mail
        expect(page.get_by_text(question("nps", "zh_Hans"))).to_be_visible()
        page.get_by_role("button", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.get_by_text(question("nps", "en"))).to_be_visible()
        # The pre-selected answer survived the switch; nothing was stored by opening the link.
        overall = page.get_by_role("group", name=question("csat_overall", "en"))
        assert overall.get_by_label("3", exact=True).is_checked()
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count()).select_from(SurveyResponse)) == 0
        page.get_by_role("button", name="Send my answers").click()
        expect_thanks(page, link)
        response = stored()
        assert (response.csat_overall, response.language) == (3, "en")
    finally:
        context.close()


def test_the_email_fits_a_phone_and_its_one_click_link_only_preselects(site, browser):
    link, message = site.mail("en")
    html = message.get_body(preferencelist=("html",)).get_content()
    context = browser.new_context(locale="en-US", **PHONE)
    try:
        page = context.new_page()
        page.set_content(html)
        no_horizontal_overflow(page)
        page.get_by_role("link", name="2", exact=True).tap()
        expect(page).to_have_url(f"{link}?csat_overall=2")
        overall = page.get_by_role("group", name=question("csat_overall", "en"))
        assert overall.get_by_label("2", exact=True).is_checked()
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count()).select_from(SurveyResponse)) == 0
        page.get_by_role("button", name="Send my answers").tap()
        expect_thanks(page, link)
        assert stored().csat_overall == 2
    finally:
        context.close()
