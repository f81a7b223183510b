"""Closing the loop (e-mail once per customer and cycle, in their language, opt-outs
skipped, the editable template, the recovery rate), the audit trail and the timeline
markers on the dashboards' trend charts (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from analysis.dashboards import figures, services
from analysis.metrics import Kpi, Scope
from improvement.audit.models import AuditEvent
from improvement.close_loop.models import CloseLoopMessage, CloseLoopTemplate, LoopMessageStatus
from improvement.close_loop.services import (
    queue_close_loop,
    recovery_rate,
    save_template,
    send_close_loop_messages,
)
from improvement.pdca.actions import add_action, update_action
from improvement.pdca.models import PdcaCycle, Stage
from improvement.pdca.stages import approve_plan, record_act
from improvement.root_causes.cases import classify_case, open_case
from improvement.root_causes.causes import create_root_cause, link_case
from improvement.root_causes.models import CaseOrigin
from survey_app.extensions import db
from survey_app.models import Role, Ticket, User
from survey_app.types import utcnow
from tests.conftest import csrf_token
from tests.root_cause_factories import make_response, make_ticket

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db


def staff(email: str, role: Role = Role.ANALYST) -> User:
    user = User(email=email, role=role, password_hash="x")
    db.session.add(user)
    db.session.commit()
    return user


def cycle_at_act(owner: User, root_causes: list[Any], title: str = "Faster chat") -> PdcaCycle:
    """A cycle at Act (built directly: its Check is tested in test_pdca)."""
    today = date.today()
    cycle = PdcaCycle(
        title=title,
        owner_id=owner.id,
        stage=Stage.ACT,
        scope={},
        kpi="csat_overall_percent",
        baseline_start=today - timedelta(days=60),
        baseline_end=today - timedelta(days=31),
        target_value=80.0,
        target_date=today + timedelta(days=30),
        root_causes=root_causes,
    )
    db.session.add(cycle)
    db.session.commit()
    return cycle


def linked_case(root_cause: Any, ticket: Ticket | None = None, **answers: Any) -> Any:
    response = make_response(ticket, **(answers or {"nps": 2}))
    case, _created = open_case(
        ticket=db.session.get(Ticket, response.ticket_id),
        response=response,
        origin=CaseOrigin.AUTO,
    )
    link_case(case, root_cause)
    db.session.commit()
    return case


def parts(message: Any) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html


# --- the e-mail ------------------------------------------------------------------------------


def test_standardise_tells_each_linked_customer_once_in_their_language(mail_app, mailbox):
    manager = staff("boss@example.com", Role.MANAGER)
    root_cause = create_root_cause("Slow chat queue")
    other_cause = create_root_cause("Billing errors")
    chinese = make_ticket(customer_name="张三")
    english = make_ticket(customer_name="Ann <Lee>")
    english.customer.language = "en"
    opted_out = make_ticket()
    opted_out.customer.opted_out_at = utcnow()
    no_email = make_ticket()
    no_email.customer.email = None
    unrelated = make_ticket()
    db.session.commit()
    linked_case(root_cause, chinese)
    linked_case(root_cause, chinese)  # a second case of the same customer: told once
    linked_case(other_cause, english)
    linked_case(root_cause, opted_out)
    linked_case(root_cause, no_email)
    make_response(unrelated, nps=1)
    cycle = cycle_at_act(manager, [root_cause, other_cause])

    record_act(cycle, "standardise", manager, "Chat now answers in <2 minutes & more staff.")
    db.session.commit()
    assert mailbox.messages == []  # nothing is sent inside the request
    assert db.session.scalar(select(func.count()).select_from(CloseLoopMessage)) == 2

    report = send_close_loop_messages()
    assert (report.sent, report.skipped, report.failed) == (2, 0, 0)
    assert send_close_loop_messages().sent == 0
    assert queue_close_loop(cycle) == 0  # recorded: never queued (or sent) twice
    db.session.commit()
    assert send_close_loop_messages().sent == 0
    assert len(mailbox.messages) == 2

    by_recipient = {m.envelope_recipients[0]: m for m in mailbox.messages}
    zh = by_recipient[chinese.customer.email]
    en = by_recipient[english.customer.email]
    assert str(zh["Subject"]) == "感谢您的反馈：我们做出了改进"
    assert str(en["Subject"]) == "Thank you for your feedback: here is what we changed"
    zh_text, _zh_html = parts(zh)
    en_text, en_html = parts(en)
    assert "张三，您好" in zh_text and "Faster chat" in zh_text
    assert "Dear Ann <Lee>," in en_text
    assert "Chat now answers in <2 minutes & more staff." in en_text
    assert "Ann &lt;Lee&gt;" in en_html and "<Lee>" not in en_html
    assert "&lt;2 minutes &amp; more staff." in en_html
    assert re.search(r"/s/unsubscribe/[\w.-]+|unsubscribe", en_text)
    rows = db.session.scalars(select(CloseLoopMessage)).all()
    assert {row.status for row in rows} == {LoopMessageStatus.SENT}
    assert {row.language for row in rows} == {"zh_Hans", "en"}


def test_opt_out_after_the_act_is_skipped_and_adjust_tells_nobody(mail_app, mailbox):
    manager = staff("boss@example.com", Role.MANAGER)
    root_cause = create_root_cause("Slow chat queue")
    ticket = make_ticket()
    linked_case(root_cause, ticket)
    adjusted = cycle_at_act(manager, [root_cause], title="Adjusted")
    record_act(adjusted, "adjust", manager)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(CloseLoopMessage)) == 0

    cycle = cycle_at_act(manager, [root_cause])
    record_act(cycle, "standardise", manager)
    db.session.commit()
    ticket.customer.opted_out_at = utcnow()
    db.session.commit()
    report = send_close_loop_messages()
    assert (report.sent, report.skipped) == (0, 1)
    assert mailbox.messages == []
    row = db.session.scalar(select(CloseLoopMessage))
    assert row is not None and row.status is LoopMessageStatus.SKIPPED


def test_template_page_roles_csrf_bad_input_and_escaped_preview(client, auth, make_user):
    auth.sign_in(make_user(Role.ANALYST))
    assert client.get("/pdca/close-loop-template").status_code == 403
    auth.logout()
    auth.sign_in(make_user(Role.MANAGER))
    page = client.get("/pdca/close-loop-template?language=en")
    assert page.status_code == 200 and "Thank you for your feedback" in page.get_data(True)
    assert "感谢您的反馈" in client.get("/pdca/close-loop-template").get_data(True)

    form = {"language": "en", "subject": "We fixed {cycle}", "body": "Hi {name}: {what_changed}"}
    url = "/pdca/close-loop-template"
    assert client.post(url, data={**form, "save": "Save"}).status_code == 400  # no CSRF
    bad = {**form, "body": "Hi {password}", "save": "Save", "csrf_token": csrf_token(client)}
    answer = client.post(url, data=bad)
    assert answer.status_code == 400 and "Unknown placeholder" in answer.get_data(True)
    assert db.session.scalar(select(func.count()).select_from(CloseLoopTemplate)) == 0

    preview = {
        **form,
        "body": "<script>alert(1)</script> {name}",
        "preview": "Preview",
        "csrf_token": csrf_token(client),
    }
    html = client.post(url, data=preview).get_data(True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    assert db.session.scalar(select(func.count()).select_from(CloseLoopTemplate)) == 0
    saved = client.post(url, data={**form, "save": "Save", "csrf_token": csrf_token(client)})
    assert saved.status_code == 302
    stored = db.session.scalar(select(CloseLoopTemplate))
    assert stored is not None and (stored.language, stored.subject) == ("en", "We fixed {cycle}")


def test_the_saved_template_is_sent(mail_app, mailbox):
    manager = staff("boss@example.com", Role.MANAGER)
    save_template("en", "We fixed {cycle}", "Hi {name}: {what_changed}", manager)
    root_cause = create_root_cause("Slow chat queue")
    ticket = make_ticket(customer_name="Ann")
    ticket.customer.language = "en"
    linked_case(root_cause, ticket)
    cycle = cycle_at_act(manager, [root_cause])
    record_act(cycle, "standardise", manager, "More staff")
    db.session.commit()
    assert send_close_loop_messages().sent == 1
    (message,) = mailbox.messages
    assert str(message["Subject"]) == "We fixed Faster chat"
    assert parts(message)[0].startswith("Hi Ann: More staff")


# --- the recovery rate -----------------------------------------------------------------------


def test_recovery_rate_by_hand(app, client, auth, make_user):
    manager = make_user(Role.MANAGER)
    root_cause = create_root_cause("Slow chat queue")
    tickets = [make_ticket() for _ in range(5)]
    for ticket in tickets:
        linked_case(root_cause, ticket, nps=3)
    cycle = cycle_at_act(manager, [root_cause])
    record_act(cycle, "standardise", manager)
    db.session.commit()
    assert cycle.closed_at is not None
    later = cycle.closed_at + timedelta(days=3)
    a, b, c, d, _e = tickets
    make_response(a, submitted_at=later, nps=9, csat_overall=4)  # recovered
    make_response(b, submitted_at=later, nps=5, csat_overall=5)  # NPS still ≤ 6
    make_response(c, submitted_at=later, nps=9, csat_speed=2)  # a CSAT still ≤ 2 ...
    make_response(c, submitted_at=later + timedelta(days=1), nps=10)  # ... next one counts only
    make_response(d, submitted_at=later, csat_overall=3)  # no NPS answer: not low
    # e answered nothing after the Act: told, but not in n.
    result = recovery_rate(cycle)
    assert result is not None
    assert (result.customers, result.n, result.recovered) == (5, 4, 2)
    assert result.rate == pytest.approx(50.0)

    auth.sign_in(manager)
    page = client.get(f"/pdca/{cycle.id}").get_data(True)
    assert "Recovery rate: 50.0%" in page and "2 of 4" in page


# --- the audit trail -------------------------------------------------------------------------


def test_audit_trail_of_case_cycle_and_action(app, client, auth, make_user):
    analyst = make_user(Role.ANALYST)
    manager = make_user(Role.MANAGER)
    admin = make_user(Role.ADMIN)
    root_cause = create_root_cause("Slow chat queue", user=analyst)
    case = linked_case(root_cause)
    classify_case(
        case,
        problem_type=None,
        urgency=2,
        reach=3,
        touchpoint=None,
        process_step=None,
        responsible_party=None,
        status="in_progress",
        user=analyst,
    )
    cycle = cycle_at_act(manager, [root_cause])
    cycle.stage = Stage.PLAN
    action = add_action(
        cycle, title="Re-roster", owner=analyst, deadline=date.today(), user=manager
    )
    update_action(action, status="done", evidence="rota <v2>", user=analyst)
    approve_plan(cycle, manager)
    db.session.commit()

    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    summary = [(e.entity_type, e.action, e.actor_id) for e in events]
    assert ("root_cause", "create", analyst.id) in summary
    assert ("case", "classify", analyst.id) in summary
    assert ("action", "create", manager.id) in summary
    assert ("cycle", "approve", manager.id) in summary
    classify = next(e for e in events if e.action == "classify")
    assert classify.changes["severity"] == [None, 6]
    assert classify.changes["urgency"] == [None, 2]
    update = next(e for e in events if e.entity_type == "action" and e.action == "update")
    assert update.changes["status"] == ["open", "done"]
    assert update.changes["evidence"] == ["", "rota <v2>"]
    # An update that changes nothing writes nothing.
    before = len(events)
    update_action(action, status="done", evidence="rota <v2>", user=analyst)
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == before

    auth.sign_in(analyst)
    page = client.get(f"/pdca/{cycle.id}").get_data(True)
    assert "rota &lt;v2&gt;" in page and "plan approved" in page
    assert page.index("plan approved") < page.index("action #")  # newest first
    assert "classified" in client.get(f"/cases/{case.id}").get_data(True)
    assert client.get("/admin/audit").status_code == 403
    auth.logout()
    auth.sign_in(admin)
    listing = client.get("/admin/audit?entity_type=case").get_data(True)
    assert f"feedback case #{case.id}" in listing and "PDCA cycle #" not in listing
    assert client.get("/admin/audit?entity_type=secrets").status_code == 400
    assert client.get("/admin/audit?from=yesterday").status_code == 400


# --- timeline markers on the trend charts ----------------------------------------------------


def test_markers_are_drawn_on_the_trend_charts(app, client, auth, make_user):
    from tests.kpi_data import MID_SEPTEMBER, KpiData

    scope = Scope(start=date(2025, 9, 1), end=date(2025, 9, 30), timezone="Asia/Shanghai")
    markers = app.extensions.setdefault(services.TIMELINE_MARKERS_HOOK, [])
    markers.append(
        lambda s: [
            (date(2025, 9, 17), "Do: <b>rota</b>"),
            (date(2025, 10, 2), "outside the period"),
        ]
    )
    assert services.timeline_markers(scope, "week") == [("2025-09-15", "Do: <b>rota</b>")]
    assert services.timeline_markers(scope, "month") == [("2025-09-01", "Do: <b>rota</b>")]

    figure = figures.kpi_trend_figure(
        "NPS",
        [
            ("2025-09-08", Kpi("nps", 10.0, 3, False, "nps")),
            ("2025-09-15", Kpi("nps", 20.0, 3, False, "nps")),
        ],
        axis=(-100, 100),
        markers=[("2025-09-15", "Do: <b>rota</b>"), ("2025-12-01", "off the axis")],
    )
    (shape,) = figure["layout"]["shapes"]
    assert (shape["x0"], shape["x1"], shape["type"]) == ("2025-09-15", "2025-09-15", "line")
    (note,) = figure["layout"]["annotations"]
    assert note["text"] == "Do: &lt;b&gt;rota&lt;/b&gt;"

    kd = KpiData()
    kd.response(nps=10, submitted_at=MID_SEPTEMBER)
    db.session.commit()
    auth.sign_in(make_user(Role.ANALYST))
    html = client.get("/dashboards?from=2025-09-01&to=2025-09-30&grain=week").get_data(True)
    match = re.search(r'id="figure-nps_trend">(.*?)</script>', html, re.S)
    assert match
    chart = json.loads(match.group(1))
    assert [s["x0"] for s in chart["layout"]["shapes"]] == ["2025-09-15"]
