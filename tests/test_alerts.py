"""KPI targets and graded alerts: grading, status colours, the alert life cycle (fires once,
no re-send while open, escalates, clears), e-mail over real SMTP, the signed webhook, low
confidence, two concurrent checks, the pages (roles, CSRF, bad input) and the CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

import analysis.targets.alerts as alerts_module
from analysis.metrics import Scope, compute
from analysis.targets import status_for
from analysis.targets.alerts import check_alerts
from analysis.targets.models import Alert, KpiTarget, Level, WebhookFormat
from analysis.targets.notify import webhook_body
from analysis.targets.services import TargetError, TargetSpec, save_target
from analysis.targets.status import direction_of, gap_of, grade
from survey_app.background import registered_jobs
from survey_app.extensions import db
from survey_app.intake.signing import verify
from survey_app.models import Role, User
from tests.conftest import PASSWORD, Auth, Mailbox, csrf_token
from tests.kpi_data import KpiData

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

SECRET = "alert-hook-secret"
#: The check runs "today" = 16 September 2025; a 7-day window covers 10–16 September,
#: and KpiData's responses are submitted on 15 September.
TODAY = date(2025, 9, 16)
SEPTEMBER = Scope(start=date(2025, 9, 1), end=date(2025, 9, 30))


class Hook:
    """A local HTTP server standing in for a chat bot's webhook."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _headers, body in self.requests]


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.thread.join(timeout=5)
    server.server.server_close()


@pytest.fixture
def alert_app(
    make_app: Callable[..., Flask], smtp_server: tuple[str, int, Mailbox], hook: Hook
) -> Iterator[Flask]:
    """Mail to aiosmtpd, webhooks to ``hook``, KPIs graded from 3 answers on."""
    host, port, _mailbox = smtp_server
    application = make_app(
        MAIL_SERVER=host,
        MAIL_PORT=port,
        MAIL_DEFAULT_SENDER="alerts@example.com",
        METRICS_MIN_SAMPLE=3,
        ALERT_WEBHOOK_URL=hook.url,
        ALERT_WEBHOOK_SECRET=SECRET,
        PUBLIC_URL="https://closedloop.example.com",
    )
    with application.app_context():
        yield application


@pytest.fixture
def alert_client(alert_app: Flask) -> Any:
    return alert_app.test_client()


def staff(role: Role, email: str | None = None, **fields: Any) -> User:
    """A committed staff user of the alert app (``make_user`` would build a second app)."""
    user = User(email=email or f"{role.value}@example.com", role=role, **fields)
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.commit()
    return user


def nps_target(**overrides: Any) -> KpiTarget:
    """NPS ≥ 40 for team Frontline; yellow beyond a gap of 0, orange beyond 10, red beyond 20."""
    spec = TargetSpec(
        kpi="nps",
        target=40,
        yellow=0,
        orange=10,
        red=20,
        filters={"team": ["Frontline"]},
        recipients=["quality@example.com"],
    )
    for key, value in overrides.items():
        setattr(spec, key, value)
    target = save_target(spec)
    db.session.commit()
    return target


def add_nps(data: KpiData, *scores: int, team: str = "Frontline") -> None:
    for score in scores:
        data.response(data.ticket(team=team), nps=score)
    db.session.commit()


# --- grading -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kpi", "direction"),
    [
        ("nps", "higher"),
        ("csat_overall_percent", "higher"),
        ("ces_average", "higher"),
        ("fcr", "higher"),
        ("response_rate", "higher"),
        ("sla_breach_rate", "lower"),
        ("reopen_rate", "lower"),
        ("contacts_per_ticket", "lower"),
        ("first_response_time_p90", "lower"),
        ("resolution_time_mean", "lower"),
    ],
)
def test_direction_follows_from_the_kpi(kpi, direction):
    assert direction_of(kpi) == direction


def test_unknown_kpi_is_refused():
    with pytest.raises(ValueError, match="unknown KPI"):
        direction_of("happiness")


@pytest.mark.parametrize(
    ("kpi", "value", "target", "gap"),
    [
        ("nps", 25.0, 40.0, 15.0),  # higher is better: target − value
        ("nps", 45.0, 40.0, -5.0),
        ("sla_breach_rate", 7.5, 5.0, 2.5),  # lower is better: value − target
        ("sla_breach_rate", 4.0, 5.0, -1.0),
        # 17/20 computed through floats: on target, not 1e-14 short of it.
        ("csat_overall_percent", (1 - 3 / 20) * 100, 85.0, 0.0),
    ],
)
def test_gap(kpi, value, target, gap):
    assert gap_of(kpi, value, target) == gap


@pytest.mark.parametrize(
    ("gap", "level"),
    [
        (-3.0, Level.OK),
        (0.0, Level.OK),  # exactly on target is met
        (0.1, Level.YELLOW),
        (10.0, Level.YELLOW),  # exactly on a threshold stays at the milder level
        (10.5, Level.ORANGE),
        (20.0, Level.ORANGE),
        (20.01, Level.RED),
    ],
)
def test_grade(gap, level):
    assert grade(gap, 0, 10, 20) is level


def test_negative_yellow_warns_before_the_target_is_missed():
    # CSAT % target 85, yellow beyond −1: 85.5 is yellow ("approaching"), 86 is ok.
    assert grade(gap_of("csat_overall_percent", 85.5, 85), -1, 0, 5) is Level.YELLOW
    assert grade(gap_of("csat_overall_percent", 86, 85), -1, 0, 5) is Level.OK
    # SLA breach rate target 5, red beyond 0: above 5 % is red.
    assert grade(gap_of("sla_breach_rate", 5.0, 5), -2, -1, 0) is Level.ORANGE
    assert grade(gap_of("sla_breach_rate", 5.1, 5), -2, -1, 0) is Level.RED


# --- status_for --------------------------------------------------------------------------------


def test_status_for_uses_the_most_specific_target(alert_app):
    data = KpiData()
    # Frontline: promoters 10, 9; passive 8; detractor 3 → NPS = (2 − 1) / 4 = 25.0
    add_nps(data, 10, 9, 8, 3)
    # Backoffice: 10, 10, 10 → NPS = 100.0
    add_nps(data, 10, 10, 10, team="Backoffice")
    nps_target()  # Frontline: target 40 → gap 15 → orange
    save_target(TargetSpec(kpi="nps", target=50, yellow=0, orange=10, red=20))  # everyone
    db.session.commit()

    frontline = Scope(start=SEPTEMBER.start, end=SEPTEMBER.end, team=("Frontline",))
    status = status_for("nps", compute(frontline).overall["nps"], frontline)
    assert (status.level, status.target, status.gap) == ("orange", 40.0, 15.0)

    # Everyone: 5 promoters, 1 passive, 1 detractor of 7 → 4/7 × 100 = 57.14 ≥ 50 → ok
    status = status_for("nps", compute(SEPTEMBER).overall["nps"], SEPTEMBER)
    assert status.level == "ok" and status.target == 50.0
    assert status.gap == pytest.approx(50 - 400 / 7)

    # Backoffice has no target of its own: the organisation's applies (100 ≥ 50).
    backoffice = Scope(start=SEPTEMBER.start, end=SEPTEMBER.end, team=("Backoffice",))
    assert status_for("nps", compute(backoffice).overall["nps"], backoffice).level == "ok"

    # Frontline and Backoffice together are not covered by the Frontline target.
    both = Scope(start=SEPTEMBER.start, end=SEPTEMBER.end, team=("Backoffice", "Frontline"))
    assert status_for("nps", compute(both).overall["nps"], both).target == 50.0

    kpi = compute(SEPTEMBER).overall["csat_overall_percent"]
    assert status_for("csat_overall_percent", kpi, SEPTEMBER).level == "no_target"


def test_status_for_low_confidence_is_not_graded(alert_app):
    add_nps(KpiData(), 0, 0)  # NPS −100 on 2 answers, below the minimum of 3
    nps_target()
    scope = Scope(start=SEPTEMBER.start, end=SEPTEMBER.end, team=("Frontline",))
    status = status_for("nps", compute(scope).overall["nps"], scope)
    assert (status.level, status.target, status.gap) == ("low_confidence", 40.0, None)
    empty = Scope(start=date(2025, 1, 1), end=date(2025, 1, 31), team=("Frontline",))
    assert status_for("nps", compute(empty).overall["nps"], empty).level == "low_confidence"


# --- the alert life cycle ----------------------------------------------------------------------


def test_fires_once_escalates_does_not_resend_and_clears(alert_app, mailbox, hook):
    data = KpiData()
    nps_target()
    add_nps(data, 10, 9, 8, 3)  # NPS 25 → gap 15 → orange

    summary = check_alerts(today=TODAY)
    assert (summary.opened, summary.notified, summary.failed) == (1, 1, 0)
    alert = db.session.scalars(select(Alert)).one()
    assert (alert.level, alert.value, alert.n, alert.gap) == (Level.ORANGE, 25.0, 4, 15.0)
    assert (alert.window_start, alert.window_end) == ("2025-09-10", "2025-09-16")
    assert alert.notified_level is Level.ORANGE
    assert len(mailbox.messages) == 1 and len(hook.requests) == 1
    opened = hook.bodies()[0]
    assert opened["event"] == "alert.opened"
    assert (opened["level"], opened["value"], opened["target"], opened["gap"], opened["n"]) == (
        "orange", 25.0, 40.0, 15.0, 4
    )  # fmt: skip
    assert opened["scope"] == {"team": ["Frontline"]}
    assert opened["url"] == "https://closedloop.example.com/alerts"

    # Still orange: nothing is sent again.
    assert check_alerts(today=TODAY).notified == 0
    assert len(mailbox.messages) == 1 and len(hook.requests) == 1

    add_nps(data, 0, 0)  # 2 promoters, 3 detractors of 6 → −16.67 → gap 56.67 → red
    summary = check_alerts(today=TODAY)
    assert (summary.escalated, summary.notified) == (1, 1)
    escalated = hook.bodies()[1]
    assert (escalated["event"], escalated["level"], escalated["previous_level"]) == (
        "alert.escalated", "red", "orange"
    )  # fmt: skip
    assert escalated["value"] == pytest.approx(-100 / 6)
    assert len(mailbox.messages) == 2
    assert db.session.scalar(select(func.count()).select_from(Alert)) == 1

    add_nps(data, 10, 10, 10, 10)  # 6 P, 3 D of 10 → 30 → gap 10 → yellow: milder, not sent
    assert check_alerts(today=TODAY).notified == 0
    db.session.expire_all()
    alert = db.session.scalars(select(Alert)).one()
    assert (alert.level, alert.current_level, alert.value) == (Level.RED, Level.YELLOW, 30.0)

    add_nps(data, *[10] * 6)  # 12 P, 3 D of 16 → 56.25 → ok: the alert clears
    summary = check_alerts(today=TODAY)
    assert (summary.cleared, summary.notified) == (1, 1)
    resolved = hook.bodies()[2]
    assert (resolved["event"], resolved["level"], resolved["value"]) == (
        "alert.resolved", "ok", 56.25
    )  # fmt: skip
    db.session.expire_all()
    alert = db.session.scalars(select(Alert)).one()
    assert alert.cleared_at is not None and alert.escalated_at is not None
    assert len(mailbox.messages) == 3 and len(hook.requests) == 3

    assert check_alerts(today=TODAY).notified == 0
    assert len(hook.requests) == 3


def test_email_is_html_and_text_in_each_recipients_language(alert_app, mailbox):
    staff(Role.MANAGER, email="Li.Na@example.com", language="zh_Hans")
    nps_target(recipients=["quality@example.com", "li.na@example.com"])
    add_nps(KpiData(), 10, 9, 8, 3)

    check_alerts(today=TODAY)

    by_recipient = {tuple(m.envelope_recipients): m for m in mailbox.messages}
    assert set(by_recipient) == {("quality@example.com",), ("li.na@example.com",)}
    english = by_recipient[("quality@example.com",)]
    assert "NPS" in english["Subject"] and "25.0" in english["Subject"]
    assert english["Auto-Submitted"] == "auto-generated"
    html = english.get_body(("html",)).get_content()
    text = english.get_body(("plain",)).get_content()
    assert 'lang="en"' in html and "Frontline" in html and "40.0" in text
    assert "https://closedloop.example.com/alerts" in text
    chinese = by_recipient[("li.na@example.com",)].get_body(("html",)).get_content()
    assert 'lang="zh-Hans"' in chinese


def test_webhook_is_signed_and_has_the_chat_bot_shapes(alert_app, hook):
    nps_target()
    add_nps(KpiData(), 10, 9, 8, 3)
    check_alerts(today=TODAY)
    headers, body = hook.requests[0]
    verify(
        SECRET,
        headers["x-closedloop-signature"],
        headers["x-closedloop-timestamp"],
        body,
        tolerance=60,
    )
    payload = json.loads(body)
    assert webhook_body(payload, WebhookFormat.SLACK) == {
        "text": f"[ClosedLoop] {payload['text']} {payload['url']}"
    }
    wecom = webhook_body(payload, WebhookFormat.WECOM)
    assert wecom["msgtype"] == "text" and "NPS" in wecom["text"]["content"]
    assert webhook_body(payload, WebhookFormat.DINGTALK) == wecom


def test_per_target_webhook_in_wecom_format(alert_app, hook):
    nps_target(webhook_url=hook.url + "/wecom", webhook_format=WebhookFormat.WECOM)
    add_nps(KpiData(), 10, 9, 8, 3)
    check_alerts(today=TODAY)
    assert hook.requests[0][1] and hook.bodies()[0]["msgtype"] == "text"


def test_failed_delivery_is_recorded_and_retried(alert_app, hook):
    nps_target(recipients=[])
    add_nps(KpiData(), 10, 9, 8, 3)
    hook.status = 500
    summary = check_alerts(today=TODAY)
    assert (summary.opened, summary.failed) == (1, 1)
    alert = db.session.scalars(select(Alert)).one()
    assert alert.notified_level is None and "500" in (alert.notify_error or "")

    hook.status = 200
    assert check_alerts(today=TODAY).notified == 0  # not yet: retried after 10 minutes
    alert_app.config["ALERT_RETRY_MINUTES"] = 0
    assert check_alerts(today=TODAY).notified == 1
    db.session.expire_all()
    alert = db.session.scalars(select(Alert)).one()
    assert alert.notified_level is Level.ORANGE and alert.notify_error is None
    assert len(hook.requests) == 2


def test_low_confidence_never_raises_an_alert(alert_app, hook, mailbox, alert_client):
    nps_target()
    add_nps(KpiData(), 0, 0)  # NPS −100, but n = 2 < 3
    summary = check_alerts(today=TODAY)
    assert (summary.evaluated, summary.low_confidence, summary.opened) == (1, 1, 0)
    assert db.session.scalar(select(func.count()).select_from(Alert)) == 0
    assert hook.requests == [] and mailbox.messages == []

    Auth(alert_client).sign_in(staff(Role.ANALYST))
    page = alert_client.get("/alerts").get_data(as_text=True)
    assert "Not evaluated: too few answers" in page
    assert "n = 2" in page


@pytest.mark.real_db
def test_two_concurrent_checks_send_once(alert_app, hook, mailbox, monkeypatch):
    nps_target()
    add_nps(KpiData(), 10, 9, 8, 3)
    barrier = threading.Barrier(2, timeout=20)
    real_compute = alerts_module.compute

    def compute_then_wait(*args: Any, **kwargs: Any) -> Any:
        result = real_compute(*args, **kwargs)
        barrier.wait()  # both checks have graded the KPI before either claims
        return result

    monkeypatch.setattr(alerts_module, "compute", compute_then_wait)
    summaries: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with alert_app.app_context():
                summaries.append(check_alerts(today=TODAY))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(s.opened for s in summaries) == [0, 1]
    assert sum(s.notified for s in summaries) == 1
    assert len(hook.requests) == 1 and len(mailbox.messages) == 1
    assert db.session.scalar(select(func.count()).select_from(Alert)) == 1


def test_disabled_target_is_not_checked(alert_app, hook):
    nps_target(alerts_enabled=False)
    add_nps(KpiData(), 0, 0, 0)
    assert check_alerts(today=TODAY).evaluated == 0
    assert hook.requests == []


def test_check_is_a_registered_job_and_a_command(alert_app, hook):
    assert "check-alerts" in [job.name for job in registered_jobs(alert_app)]
    nps_target()
    add_nps(KpiData(), 10, 9, 8, 3)
    result = alert_app.test_cli_runner().invoke(args=["alerts", "check", "--json"])
    assert result.exit_code == 0, result.output
    # "today" is the real today: September 2025 is outside the window, nothing to grade.
    assert json.loads(result.output)["low_confidence"] == 1
    listed = alert_app.test_cli_runner().invoke(args=["alerts", "list"])
    assert "low confidence (n=0)" in listed.output
    targets = alert_app.test_cli_runner().invoke(args=["alerts", "targets"])
    assert "nps ≥ 40.0" in targets.output and "Team: Frontline" in targets.output


# --- operations: validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kpi": "happiness"}, "kpi"),
        ({"target": 140}, "target"),
        ({"kpi": "csat_overall_average", "target": 6}, "target"),
        ({"yellow": 10, "orange": 10}, "orange"),
        ({"yellow": 5, "orange": 3, "red": 8}, "orange"),
        ({"window_days": 0}, "window_days"),
        ({"filters": {"channel": ["fax"]}}, "filters"),
        ({"filters": {"colour": ["blue"]}}, "filters"),
        ({"recipients": ["not-an-address"]}, "recipients"),
        ({"webhook_url": "ftp://example.com/hook"}, "webhook_url"),
        ({"target": float("nan")}, "target"),
    ],
)
def test_bad_targets_are_refused(app, changes, field):
    spec = TargetSpec(kpi="nps", target=40, yellow=0, orange=10, red=20)
    for key, value in changes.items():
        setattr(spec, key, value)
    with pytest.raises(TargetError) as caught:
        save_target(spec)
    assert field in caught.value.errors
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(KpiTarget)) == 0


def test_one_target_per_kpi_and_scope(app):
    save_target(TargetSpec(kpi="nps", target=40, yellow=0, orange=10, red=20,
                           filters={"channel": ["chat", "phone"]}))  # fmt: skip
    with pytest.raises(TargetError, match="already has a target"):
        save_target(TargetSpec(kpi="nps", target=30, yellow=0, orange=10, red=20,
                               filters={"channel": ["phone", "chat"]}))  # fmt: skip


# --- pages -------------------------------------------------------------------------------------


def form_data(**overrides: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kpi": "sla_breach_rate",
        "target": "5",
        "yellow": "-1",
        "orange": "0",
        "red": "2",
        "team": "Frontline, Escalations",
        "channel": ["chat", "phone"],
        "customer_is_new": "",
        "window_days": "7",
        "alerts_enabled": "y",
        "recipients": "quality@example.com\nlead@example.com",
        "webhook_url": "",
        "webhook_format": "generic",
        "note": "<b>seed target</b>",
    }
    data.update(overrides)
    return data


def test_manager_creates_edits_and_deletes_a_target(client, auth, make_user):
    auth.sign_in(make_user(Role.MANAGER))
    assert client.get("/targets/new").status_code == 200
    response = client.post("/targets/new", data={**form_data(), "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    target = db.session.scalars(select(KpiTarget)).one()
    assert target.filters == {"channel": ["chat", "phone"], "team": ["Escalations", "Frontline"]}
    assert (target.target, target.yellow, target.orange, target.red) == (5, -1, 0, 2)
    assert target.recipients == ["quality@example.com", "lead@example.com"]

    page = client.get("/targets").get_data(as_text=True)
    assert "SLA breach rate %" in page and "≤ 5.0%" in page
    edit = client.get(f"/targets/{target.id}").get_data(as_text=True)
    assert "Frontline, Escalations" in edit or "Escalations, Frontline" in edit
    assert "&lt;b&gt;seed target&lt;/b&gt;" in edit

    response = client.post(
        f"/targets/{target.id}",
        data={**form_data(target="4", channel=[]), "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert target.target == 4 and "channel" not in target.filters

    response = client.post(f"/targets/{target.id}/delete", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(KpiTarget)) == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"orange": "-3"}, "Thresholds must increase"),
        ({"target": "120"}, "Between 0.0 and 100.0."),
        ({"target": "abc"}, "Not a valid float value."),
        ({"recipients": "quality@example.com, nobody"}, "nobody is not an e-mail address."),
        ({"channel": ["fax"]}, "not a valid choice"),
        ({"webhook_url": "javascript:alert(1)"}, "Enter an http:// or https:// address."),
        ({"window_days": "400"}, "Number must be between 1 and 366."),
    ],
)
def test_bad_input_is_shown_and_nothing_is_saved(client, auth, make_user, overrides, message):
    auth.sign_in(make_user(Role.ADMIN))
    response = client.post(
        "/targets/new", data={**form_data(**overrides), "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(KpiTarget)) == 0


def test_posts_without_csrf_token_are_refused(client, auth, make_user):
    auth.sign_in(make_user(Role.MANAGER))
    assert client.post("/targets/new", data=form_data()).status_code == 400
    target = save_target(TargetSpec(kpi="nps", target=40, yellow=0, orange=10, red=20))
    db.session.commit()
    client.post(f"/targets/{target.id}/delete", data={})
    assert db.session.get(KpiTarget, target.id) is not None


def test_alert_list_shows_open_and_cleared_alerts(alert_app, alert_client):
    client = alert_client
    data = KpiData()
    nps_target(recipients=[], note="x")
    add_nps(data, 0, 0, 3)  # NPS −100 → red
    check_alerts(today=TODAY)
    Auth(client).sign_in(staff(Role.ANALYST))
    page = client.get("/alerts").get_data(as_text=True)
    assert "level--red" in page and "-100.0" in page and "+140.0" in page
    assert "No open alerts." not in page
    assert 'href="/targets"' not in page  # an analyst sees no link to the targets
    assert ">sent<" in page  # no recipients, but the organisation's webhook took it

    add_nps(data, *[10] * 10)  # 10 P, 3 D of 13 → 53.8 → ok
    check_alerts(today=TODAY)
    page = client.get("/alerts").get_data(as_text=True)
    assert "No open alerts." in page and "Cleared in the last 30 days" in page


def test_an_alert_nobody_receives_does_not_claim_it_was_sent(alert_app, alert_client):
    """No recipients and no webhook anywhere: the page says so instead of "sent"."""
    alert_app.config["ALERT_WEBHOOK_URL"] = None
    data = KpiData()
    nps_target(recipients=[], note="x")
    add_nps(data, 0, 0, 3)
    check_alerts(today=TODAY)
    Auth(alert_client).sign_in(staff(Role.ANALYST))
    page = alert_client.get("/alerts").get_data(as_text=True)
    assert "level--red" in page
    assert "nobody to notify" in page and ">sent<" not in page
