"""The staff ticket list: search, filters, paging."""

from __future__ import annotations

import pytest

from survey_app.models import Role
from tests.conftest import event_payload

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db


@pytest.fixture
def signed_in(auth, make_user):
    auth.sign_in(make_user(Role.ANALYST))


@pytest.fixture
def tickets(webhook):
    rows = [
        ("T-1", "100% refund please", "chat", "P1", "Frontline", "李雷", "li@example.com"),
        ("T-2", "Login fails", "email", "P3", "Technical", "Han Meimei", "han_mm@example.com"),
        ("T-3", "Invoice copy", "phone", "P4", "Billing", "王芳", "wang@example.com"),
    ]
    for number, (external_id, subject, channel, priority, team, name, email) in enumerate(rows):
        payload = event_payload(
            ticket={"external_id": external_id, "subject": subject, "channel": channel,
                    "priority": priority, "team": team,
                    "created_at": f"2026-10-2{number + 1}T09:00:00+08:00"},
            customer={"external_id": f"C-{external_id}", "name": name, "email": email},
        )  # fmt: skip
        assert webhook.post(payload).status_code == 201
    return [r[0] for r in rows]


def listed(client, **params) -> list[str]:
    html = client.get("/tickets", query_string=params).get_data(as_text=True)
    return [t for t in ("T-1", "T-2", "T-3") if f">{t}</a>" in html]


@pytest.mark.usefixtures("signed_in", "tickets")
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["T-1", "T-2", "T-3"]),
        ({"q": "login"}, ["T-2"]),
        ({"q": "李雷"}, ["T-1"]),  # a customer's name in Chinese
        ({"q": "王芳"}, ["T-1", "T-2", "T-3"]),  # the agent of all three (and a customer)
        ({"q": "techn"}, ["T-2"]),  # the team
        ({"q": "HAN_MM@"}, ["T-2"]),
        ({"q": "%"}, ["T-1"]),  # a literal percent sign, not a wildcard
        ({"q": "_"}, ["T-2"]),  # a literal underscore
        ({"priority": "P1"}, ["T-1"]),
        ({"channel": "phone"}, ["T-3"]),
        ({"team": "Technical"}, ["T-2"]),
        ({"status": "closed", "team": "Billing"}, ["T-3"]),
        ({"status": "reopened"}, []),
    ],
)
def test_search_and_filters(client, params, expected):
    assert listed(client, **params) == expected


@pytest.mark.usefixtures("signed_in", "tickets")
def test_an_invalid_filter_is_reported_and_the_others_still_apply(client):
    response = client.get("/tickets", query_string={"priority": "P9", "team": "Billing"})
    assert response.status_code == 200
    assert "Not a valid choice" in response.get_data(as_text=True)
    assert listed(client, priority="P9", team="Billing") == ["T-3"]


@pytest.mark.usefixtures("signed_in")
def test_newest_first_and_paged(make_app, webhook, client, app):
    app.config["PAGE_SIZE"] = 2
    for number in range(1, 6):
        payload = event_payload(
            ticket={"external_id": f"P-{number}", "created_at": f"2026-10-0{number}T09:00:00Z"}
        )
        webhook.post(payload)
    first = client.get("/tickets").get_data(as_text=True)
    assert first.index(">P-5<") < first.index(">P-4<")
    assert ">P-3<" not in first
    third = client.get("/tickets", query_string={"page": 3}).get_data(as_text=True)
    assert ">P-1<" in third and ">P-2<" not in third
