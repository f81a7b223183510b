"""Staff pages in headless Chromium: sign in, browse tickets, switch language, sign out."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from survey_app.models import Role
from tests.conftest import PASSWORD, event_payload

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_staff_signs_in_browses_tickets_and_signs_out(live_server, page, make_user, webhook):
    assert webhook.post(event_payload()).status_code == 201
    user = make_user(Role.ANALYST, name="Lin")

    page.goto(f"{live_server}/tickets")
    assert page.url.startswith(f"{live_server}/login")
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    assert page.url == f"{live_server}/tickets"
    page.get_by_role("link", name="T-1001").click()
    expect(page.get_by_role("heading", name="T-1001")).to_be_visible()
    expect(page.get_by_text("zhang.san@example.com")).to_be_visible()

    page.get_by_role("button", name="简体中文").click()
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    expect(page.get_by_role("heading", name="客户")).to_be_visible()

    page.get_by_role("button", name="退出登录").click()
    assert page.url.startswith(f"{live_server}/login")
    expect(page.get_by_text("您已退出登录。")).to_be_visible()


def test_wrong_password_shows_the_generic_message_on_a_phone(live_server, browser, make_user):
    user = make_user(Role.MANAGER)
    context = browser.new_context(
        locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        phone = context.new_page()
        phone.goto(f"{live_server}/login")
        phone.get_by_label("电子邮箱").fill(user.email)
        phone.get_by_label("密码").fill("not the password")
        phone.get_by_role("button", name="登录").click()
        assert phone.get_by_role("alert").inner_text().startswith("登录失败")
        # Nothing overflows the phone's width.
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
    finally:
        context.close()
