"""Findings of the security and fault review (issue 14), each held by a test."""

from __future__ import annotations

import importlib
import re

import pytest

from survey_app.extensions import db
from survey_app.models import Role
from survey_app.routing import MAX_ID, whole_number
from tests.conftest import csrf_token

#: Beyond every id column: these paths name nothing and must say so, never fail.
TOO_BIG = str(2**63)

#: SQL semantics (integer overflow differs between SQLite and PostgreSQL).
pytestmark = pytest.mark.db


def _id_rules(app, method: str, number: str) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if method in rule.methods and "<int:" in rule.rule:
            urls.append(re.sub(r"<int:\w+>", number, rule.rule))
    return sorted(urls)


@pytest.mark.parametrize("too_big", [str(MAX_ID + 1), str(2**63), str(10**30)])
def test_every_path_id_beyond_the_id_columns_is_404_not_500(app, client, auth, make_user, too_big):
    auth.sign_in(make_user(Role.ADMIN))
    gets = _id_rules(app, "GET", too_big)
    posts = _id_rules(app, "POST", too_big)
    assert len(gets) >= 10 and len(posts) >= 10, "the id routes went missing"
    token = csrf_token(client)
    answers = {url: client.get(url).status_code for url in gets}
    answers |= {
        f"POST {url}": client.post(url, data={"csrf_token": token}).status_code for url in posts
    }
    # 405: a path that only a GET rule could have matched, had the id been one.
    assert {url: status for url, status in answers.items() if status not in (404, 405)} == {}


def test_the_largest_id_still_reaches_the_view(client, auth, make_user):
    auth.sign_in(make_user(Role.ADMIN))
    assert client.get(f"/tickets/{MAX_ID}").status_code == 404  # looked up, not found
    assert client.get("/tickets/١٢").status_code == 404  # non-ASCII digits are no id


@pytest.mark.parametrize(
    "url, status",
    [
        (f"/tickets?page={TOO_BIG}", 404),
        (f"/cases?page={TOO_BIG}", 404),
        (f"/admin/surveys/invitations?page={TOO_BIG}", 404),
        (f"/admin/audit?page={TOO_BIG}", 404),
        ("/tickets?page=abc", 200),  # not a number: the first page, as before
        (f"/admin/audit?entity_id={TOO_BIG}", 400),
        ("/admin/audit?entity_id=²", 400),
        ("/admin/audit?actor_id=1_0", 400),
        ("/admin/audit?from=0001-01-01&to=9999-12-31", 400),
        ("/root-causes/pareto?since=0001-01-01&until=9999-12-31", 400),
        ("/dashboards/responses?page=²", 400),
        ("/dashboards?start=0001-01-01&end=9999-12-31", 400),
    ],
)
def test_numbers_and_days_out_of_range_are_refused_not_500(client, auth, make_user, url, status):
    auth.sign_in(make_user(Role.ADMIN))
    assert client.get(url).status_code == status


@pytest.mark.parametrize(
    "raw, expected",
    [("10", 10), ("0", 0), ("1_0", None), ("²", None), ("١٢", None), (" 1", None), ("", None),
     (None, None), (str(MAX_ID), MAX_ID), (TOO_BIG, None), ("-1", None)],
)  # fmt: skip
def test_whole_number_takes_ascii_digits_in_range_only(raw, expected):
    assert whole_number(raw) == expected


# --- finding 10: ids and numbers in one spelling -------------------------------------------------


def test_ticket_ids_are_normalised_and_counts_are_digits_only(webhook, app):
    from survey_app.models import Ticket
    from tests.conftest import event_payload

    first = webhook.post(event_payload(ticket={"external_id": "T-１００１\u200b"}))
    assert first.status_code == 201, first.get_json()
    again = webhook.post(event_payload(ticket={"external_id": "T-1001", "subject": "Later"}))
    assert again.status_code == 200
    assert [t.external_id for t in db.session.scalars(db.select(Ticket))] == ["T-1001"]

    for count in ("1_0", "10.5", "-1", "1 0"):
        response = webhook.post(event_payload(ticket={"contact_count": count}))
        assert response.status_code == 422, count
    assert webhook.post(event_payload(ticket={"contact_count": "２"})).status_code == 200


def test_line_breaks_in_header_bound_text_are_refused(webhook):
    from tests.conftest import event_payload

    response = webhook.post(event_payload(ticket={"external_id": "T-1\r\nBcc: x@evil.example"}))
    assert response.status_code == 422
    assert "control characters" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("raw", ["1_0", "10.0", "1e1", " 5 "])
def test_a_survey_score_is_a_plain_digit(raw):
    from survey_app.normalise import whole_number

    if raw == " 5 ":
        assert whole_number(raw) == 5
    else:
        with pytest.raises(ValueError):
            whole_number(raw)
    assert whole_number("５") == 5  # NFKC: full-width digits are digits


def test_a_backup_is_private_to_its_owner(tmp_path):
    import sqlite3
    import stat

    from survey_app.backup import backup_sqlite

    source = tmp_path / "live.sqlite3"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE t (x)")
    target = backup_sqlite(source, tmp_path / "backups" / "copy.sqlite3")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700


def test_gunicorn_trusts_no_forwarded_header_itself():
    """Only the app's ProxyFix (TRUSTED_PROXIES hops) reads X-Forwarded-*."""
    from gunicorn.config import Config

    config = Config()
    for name, value in vars(importlib.import_module("survey_app.gunicorn_conf")).items():
        if name in config.settings:
            config.set(name, value)
    assert config.forwarded_allow_ips == []
    assert config.secure_scheme_headers == {}
