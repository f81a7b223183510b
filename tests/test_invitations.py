"""Invitation policy, delivery and dispatch: every decision recorded, no customer mailed twice."""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale
from flask_babel import gettext as _

from survey_app.extensions import db
from survey_app.intake.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from survey_app.models import Customer, Ticket
from survey_app.surveys.invitations import DispatchReport, dispatch_due, in_sample, retry_delay
from survey_app.surveys.models import (
    DeliveryChannel,
    DeliveryLog,
    Invitation,
    InvitationStatus,
    SkipReason,
)
from survey_app.surveys.policy import current_policy
from survey_app.surveys.responses import submit_response
from survey_app.types import utcnow
from tests.conftest import Mailbox, Webhook, event_payload

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = pytest.mark.db

PUBLIC_URL = "https://feedback.example.com/cl"
GATEWAY_SECRET = "gateway-secret-42"


# --- helpers ------------------------------------------------------------------------------------


def close_ticket(
    client: FlaskClient,
    ticket: str = "T-1001",
    customer: str = "C-1",
    *,
    closed_at: datetime | None = None,
    **customer_fields: Any,
) -> Invitation:
    """Close ``ticket`` of ``customer`` through the signed webhook; return its invitation."""
    closed = closed_at or utcnow() - timedelta(hours=2)
    opened = closed - timedelta(hours=3)
    fields = {"external_id": customer, "email": f"{customer.lower()}@example.com"}
    fields.update(customer_fields)
    payload = event_payload(
        ticket={"external_id": ticket, "created_at": opened.isoformat(),
                "first_response_at": opened.isoformat(), "resolved_at": closed.isoformat(),
                "closed_at": closed.isoformat()},
        customer=fields,
    )  # fmt: skip
    response = Webhook(client).post(payload)
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return newest_invitation(ticket)


def reopen_ticket(client: FlaskClient, ticket: str, at: datetime, customer: str = "C-1") -> None:
    payload = event_payload(
        event="reopened",
        occurred_at=at.isoformat(),
        ticket={"external_id": ticket},
        customer={"external_id": customer, "email": f"{customer.lower()}@example.com"},
    )
    response = Webhook(client).post(payload)
    assert response.status_code in (200, 201), response.get_data(as_text=True)


def newest_invitation(ticket: str) -> Invitation:
    invitation = db.session.scalars(
        db.select(Invitation)
        .join(Ticket)
        .where(Ticket.external_id == ticket)
        .order_by(Invitation.id.desc())
    ).first()
    assert invitation is not None, f"no invitation for {ticket}"
    return invitation


def refreshed(invitation: Invitation) -> Invitation:
    """``invitation`` as stored now (a new transaction: an open one keeps an old snapshot)."""
    invitation_id = invitation.id
    db.session.commit()
    db.session.expire_all()
    fresh = db.session.get(Invitation, invitation_id)
    assert fresh is not None
    return fresh


def set_policy(**values: Any) -> None:
    policy = current_policy()
    for name, value in values.items():
        setattr(policy, name, value)
    db.session.commit()


def due(invitation: Invitation) -> datetime:
    """A moment just after ``invitation`` became due."""
    return invitation.send_after + timedelta(minutes=1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def path_of(url: str) -> str:
    """The app-relative path (with query) of a link built on PUBLIC_URL."""
    assert url.startswith(PUBLIC_URL + "/"), url
    parts = urlsplit(url)
    path = parts.path.removeprefix(urlsplit(PUBLIC_URL).path)
    return path + ("?" + parts.query if parts.query else "")


class Gateway:
    """A local HTTP server standing in for an SMS / WeChat gateway."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                # Header names keyed in lower case: HTTP does not keep their case.
                gateway.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(gateway.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def survey_app(
    make_app: Callable[..., Flask], smtp_server: tuple[str, int, Mailbox], gateway: Gateway
) -> Iterator[Flask]:
    """Mail to the aiosmtpd server, other channels to the local gateway, links on PUBLIC_URL."""
    host, port, _mailbox = smtp_server
    application = make_app(
        MAIL_SERVER=host,
        MAIL_PORT=port,
        MAIL_DEFAULT_SENDER="feedback@example.com",
        PUBLIC_URL=PUBLIC_URL,
        SURVEY_WEBHOOK_URL=gateway.url,
        SURVEY_WEBHOOK_SECRET=GATEWAY_SECRET,
    )
    with application.app_context():
        yield application


@pytest.fixture
def client(survey_app: Flask) -> FlaskClient:
    return survey_app.test_client()


def statuses(*invitations: Invitation) -> list[tuple[InvitationStatus, SkipReason | None]]:
    return [(i.status, i.skip_reason) for i in map(refreshed, invitations)]


# --- delay, validity, reminder -----------------------------------------------------------------


def test_defaults_are_the_documented_policy(survey_app: Flask) -> None:
    policy = current_policy()
    assert (
        policy.delay_minutes,
        policy.link_valid_days,
        policy.reminder_after_days,
        policy.fatigue_days,
        policy.sampling_percent,
        policy.exempt_detractors,
    ) == (60, 14, 3, 30, 100, False)


def test_an_invitation_waits_for_the_delay_after_close(client, mailbox) -> None:
    closed = utcnow() - timedelta(minutes=10)
    invitation = close_ticket(client, closed_at=closed)
    assert invitation.status is InvitationStatus.PENDING
    assert invitation.send_after == closed + timedelta(hours=1)

    assert dispatch_due() == DispatchReport()
    assert dispatch_due(now=closed + timedelta(minutes=59)) == DispatchReport()
    assert mailbox.messages == []
    assert refreshed(invitation).status is InvitationStatus.PENDING

    assert dispatch_due(now=closed + timedelta(minutes=61)).sent == 1
    assert len(mailbox.messages) == 1


def test_sending_sets_the_link_expiry_and_the_reminder(client, mailbox) -> None:
    invitation = close_ticket(client)
    now = due(invitation)
    dispatch_due(now=now)

    sent = refreshed(invitation)
    assert sent.status is InvitationStatus.SENT
    assert sent.sent_at == now
    assert sent.expires_at == now + timedelta(days=14)
    assert sent.reminder_due_at == now + timedelta(days=3)
    assert sent.attempts == 1
    assert sent.channel is DeliveryChannel.EMAIL
    logs = db.session.scalars(db.select(DeliveryLog)).all()
    assert [(log.kind, log.ok) for log in logs] == [("invitation", True)]


def test_the_reminder_goes_out_once(client, mailbox) -> None:
    invitation = close_ticket(client)
    now = due(invitation)
    dispatch_due(now=now)

    assert dispatch_due(now=now + timedelta(days=2)).reminded == 0
    assert dispatch_due(now=now + timedelta(days=3, minutes=1)).reminded == 1
    assert dispatch_due(now=now + timedelta(days=3, minutes=2)).reminded == 0
    assert dispatch_due(now=now + timedelta(days=5)).reminded == 0

    assert len(mailbox.messages) == 2
    reminder = mailbox.messages[1]
    assert reminder["To"] == "c-1@example.com"
    with force_locale("zh_Hans"):
        assert reminder["Subject"] == _(
            "Reminder: how did we do with request %(ticket)s?", ticket="T-1001"
        )
    assert refreshed(invitation).reminded_at == now + timedelta(days=3, minutes=1)


def test_no_reminder_after_an_answer(client, mailbox) -> None:
    invitation = close_ticket(client)
    now = due(invitation)
    dispatch_due(now=now)
    submit_response(refreshed(invitation), {"csat_overall": 5, "nps": 10}, "zh_Hans")

    assert dispatch_due(now=now + timedelta(days=4)).reminded == 0
    assert len(mailbox.messages) == 1


def test_no_reminder_once_the_link_expired(client, mailbox) -> None:
    invitation = close_ticket(client)
    now = due(invitation)
    dispatch_due(now=now)

    assert dispatch_due(now=now + timedelta(days=15)).reminded == 0
    assert len(mailbox.messages) == 1


def test_no_reminder_after_opting_out(client, mailbox) -> None:
    invitation = close_ticket(client)
    now = due(invitation)
    dispatch_due(now=now)
    refreshed(invitation).customer.opted_out_at = now + timedelta(days=1)
    db.session.commit()

    assert dispatch_due(now=now + timedelta(days=4)).reminded == 0
    assert dispatch_due(now=now + timedelta(days=5)).reminded == 0
    assert len(mailbox.messages) == 1
    skipped = db.session.scalars(db.select(DeliveryLog).where(DeliveryLog.kind == "reminder"))
    assert [(log.ok, log.detail) for log in skipped] == [(False, {"skipped": "opted_out"})]


# --- fatigue cap, detractors, sampling, contact ------------------------------------------------


def test_fatigue_cap_one_invitation_per_30_days(client, mailbox) -> None:
    first = close_ticket(client, "T-1")
    start = due(first)
    assert dispatch_due(now=start).sent == 1

    second = close_ticket(client, "T-2", closed_at=utcnow() - timedelta(minutes=90))
    report = dispatch_due(now=start + timedelta(days=1))
    assert (report.sent, report.skipped) == (0, 1)
    assert statuses(second) == [(InvitationStatus.SKIPPED, SkipReason.FATIGUE)]

    third = close_ticket(client, "T-3", closed_at=utcnow() - timedelta(minutes=80))
    assert dispatch_due(now=start + timedelta(days=30, minutes=1)).sent == 1
    assert statuses(third) == [(InvitationStatus.SENT, None)]
    assert len(mailbox.messages) == 2


@pytest.mark.parametrize(
    ("exempt", "last_nps", "expected"),
    [
        (True, 3, (InvitationStatus.SENT, None)),
        (True, 6, (InvitationStatus.SENT, None)),
        (True, 7, (InvitationStatus.SKIPPED, SkipReason.FATIGUE)),
        (False, 3, (InvitationStatus.SKIPPED, SkipReason.FATIGUE)),
    ],
)
def test_detractors_may_be_exempt_from_the_cap(client, mailbox, exempt, last_nps, expected):
    set_policy(exempt_detractors=exempt)
    first = close_ticket(client, "T-1")
    start = due(first)
    dispatch_due(now=start)
    submit_response(refreshed(first), {"csat_overall": 2, "nps": last_nps}, "zh_Hans")

    second = close_ticket(client, "T-2", closed_at=utcnow() - timedelta(minutes=90))
    dispatch_due(now=start + timedelta(days=2))

    assert statuses(second) == [expected]


@pytest.mark.parametrize(
    ("percent", "expected"),
    [
        (0, (InvitationStatus.SKIPPED, SkipReason.SAMPLED_OUT)),
        (100, (InvitationStatus.SENT, None)),
    ],
)
def test_sampling_extremes(client, mailbox, percent, expected) -> None:
    set_policy(sampling_percent=percent)
    invitations = [close_ticket(client, f"T-{n}", f"C-{n}") for n in range(6)]

    dispatch_due(now=due(invitations[0]))

    assert statuses(*invitations) == [expected] * 6
    assert len(mailbox.messages) == (6 if percent == 100 else 0)


def test_sampling_is_deterministic_and_proportional() -> None:
    nonces = [secrets.token_urlsafe(32) for _ in range(2000)]
    first = [in_sample(n, 30) for n in nonces]
    assert first == [in_sample(n, 30) for n in nonces]
    assert 0.25 < sum(first) / len(first) < 0.35
    assert not any(in_sample(n, 0) for n in nonces)
    assert all(in_sample(n, 100) for n in nonces)


def test_opted_out_customers_are_skipped(client, mailbox) -> None:
    invitation = close_ticket(client)
    invitation.customer.opted_out_at = utcnow()
    db.session.commit()

    assert dispatch_due(now=due(invitation)).skipped == 1
    assert statuses(invitation) == [(InvitationStatus.SKIPPED, SkipReason.OPTED_OUT)]
    assert mailbox.messages == []


def test_customers_without_a_contact_are_skipped(client, mailbox, gateway) -> None:
    invitation = close_ticket(client, customer="C-9", email=None)
    assert invitation.customer.email is None and invitation.customer.phone is None

    dispatch_due(now=due(invitation))

    assert statuses(invitation) == [(InvitationStatus.SKIPPED, SkipReason.NO_CONTACT)]
    assert mailbox.messages == [] and gateway.requests == []


def test_a_phone_without_a_gateway_is_no_contact(
    make_app: Callable[..., Flask], smtp_server
) -> None:
    app = make_app(MAIL_SERVER=smtp_server[0], MAIL_PORT=smtp_server[1])
    with app.app_context():
        invitation = close_ticket(app.test_client(), email=None, phone="+8613800000000")
        dispatch_due(now=due(invitation))
        assert statuses(invitation) == [(InvitationStatus.SKIPPED, SkipReason.NO_CONTACT)]


# --- other channels: the webhook sender --------------------------------------------------------


def test_a_phone_only_customer_gets_the_link_through_the_gateway(client, gateway, mailbox):
    invitation = close_ticket(client, customer="C-7", email=None, phone="+8613800000000")

    assert dispatch_due(now=due(invitation)).sent == 1

    assert mailbox.messages == []
    assert len(gateway.requests) == 1
    headers, body = gateway.requests[0]
    verify(GATEWAY_SECRET, headers.get(SIGNATURE_HEADER.lower()),
           headers.get(TIMESTAMP_HEADER.lower()), body,
           tolerance=60)  # fmt: skip
    sent = json.loads(body)
    assert sent["phone"] == "+8613800000000"
    assert sent["kind"] == "invitation"
    assert sent["language"] == "zh_Hans"
    assert sent["link"].startswith(PUBLIC_URL + "/s/")
    assert sent["link"] in sent["text"]
    assert sent["unsubscribe_link"].endswith("/unsubscribe")
    # One webhook sender for every feature: JSON, its charset said.
    assert headers["content-type"] == "application/json; charset=utf-8"
    fresh = refreshed(invitation)
    assert (fresh.status, fresh.channel) == (InvitationStatus.SENT, DeliveryChannel.WEBHOOK)
    assert client.get(path_of(sent["link"])).status_code == 200


def test_a_gateway_error_is_retried(client, gateway, mailbox) -> None:
    invitation = close_ticket(client, customer="C-7", email=None, phone="+8613800000000")
    gateway.status = 500
    now = due(invitation)

    assert dispatch_due(now=now).retried == 1
    failed = refreshed(invitation)
    assert (failed.status, failed.attempts) == (InvitationStatus.PENDING, 1)
    assert failed.last_error == "webhook answered 500"
    assert failed.send_after == now + retry_delay(1)

    gateway.status = 200
    assert dispatch_due(now=now + timedelta(minutes=1)).sent == 0
    assert dispatch_due(now=now + retry_delay(1)).sent == 1
    assert len(gateway.requests) == 2
    assert refreshed(invitation).status is InvitationStatus.SENT


# --- reopen, re-close, old imports -------------------------------------------------------------


def test_reopen_cancels_a_pending_invitation_and_a_later_close_invites_again(client, mailbox):
    closed = utcnow() - timedelta(hours=3)
    first = close_ticket(client, closed_at=closed)
    reopen_ticket(client, "T-1001", closed + timedelta(minutes=10))
    assert statuses(first) == [(InvitationStatus.CANCELLED, SkipReason.TICKET_REOPENED)]
    assert dispatch_due(now=due(first)) == DispatchReport()

    second = close_ticket(client, closed_at=closed + timedelta(minutes=20))
    assert second.id != first.id
    assert dispatch_due(now=due(second)).sent == 1
    assert statuses(first, second) == [
        (InvitationStatus.CANCELLED, SkipReason.TICKET_REOPENED),
        (InvitationStatus.SENT, None),
    ]
    assert len(mailbox.messages) == 1


def test_reopen_cancels_a_sent_invitation_and_its_link(client, mailbox) -> None:
    closed = utcnow() - timedelta(hours=3)
    first = close_ticket(client, closed_at=closed)
    dispatch_due(now=due(first))
    link = re.search(r"(https://\S+/s/[^\s?]+)\s", text_part(mailbox.messages[0])).group(1)
    assert client.get(path_of(link)).status_code == 200

    reopen_ticket(client, "T-1001", closed + timedelta(minutes=70))
    assert statuses(first) == [(InvitationStatus.CANCELLED, SkipReason.TICKET_REOPENED)]
    assert client.get(path_of(link)).status_code == 410
    assert dispatch_due(now=due(first) + timedelta(days=4)).reminded == 0

    # The customer did get that mail: a new close within 30 days stays under the cap.
    second = close_ticket(client, closed_at=closed + timedelta(minutes=80))
    dispatch_due(now=due(second))
    assert statuses(second) == [(InvitationStatus.SKIPPED, SkipReason.FATIGUE)]
    assert len(mailbox.messages) == 1


def test_importing_an_old_closed_ticket_is_skipped_as_too_old(
    survey_app: Flask, mailbox, tmp_path: Path
) -> None:
    closed = utcnow() - timedelta(days=20)
    export = tmp_path / "old.csv"
    export.write_text(
        "ticket_id,subject,channel,priority,created_at,closed_at,customer_id,email\n"
        f"T-OLD,Old,email,P3,{(closed - timedelta(hours=1)).isoformat()},{closed.isoformat()},"
        "C-OLD,old@example.com\n",
        encoding="utf-8",
    )
    result = survey_app.test_cli_runner().invoke(args=["tickets", "import", str(export)])
    assert result.exit_code == 0, result.output

    invitation = newest_invitation("T-OLD")
    assert statuses(invitation) == [(InvitationStatus.SKIPPED, SkipReason.TOO_OLD)]
    assert dispatch_due() == DispatchReport()
    assert mailbox.messages == []


# --- SMTP failures -----------------------------------------------------------------------------


def test_smtp_down_keeps_the_invitation_queued_then_sends_it(
    make_app: Callable[..., Flask], smtp_server: tuple[str, int, Mailbox]
) -> None:
    host, port, mailbox = smtp_server
    down = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port(), PUBLIC_URL=PUBLIC_URL)
    up = make_app(MAIL_SERVER=host, MAIL_PORT=port, PUBLIC_URL=PUBLIC_URL)
    with down.app_context():
        invitation = close_ticket(down.test_client())
        invitation_id, now = invitation.id, due(invitation)
        assert dispatch_due(now=now).retried == 1
        queued = refreshed(invitation)
        assert queued.status is InvitationStatus.PENDING
        assert queued.attempts == 1
        assert queued.last_error.startswith("SMTP:")
        assert queued.send_after == now + timedelta(minutes=5)
        assert dispatch_due(now=now + timedelta(minutes=4)) == DispatchReport()
        assert dispatch_due(now=now + timedelta(minutes=5)).retried == 1
        assert refreshed(invitation).send_after == now + timedelta(minutes=15)
        logs = db.session.scalars(db.select(DeliveryLog).order_by(DeliveryLog.id)).all()
        assert [(log.ok, log.detail["attempt"]) for log in logs] == [(False, 1), (False, 2)]

    with up.app_context():
        assert dispatch_due(now=now + timedelta(minutes=15)).sent == 1
        sent = db.session.get(Invitation, invitation_id)
        assert (sent.status, sent.attempts, sent.last_error) == (InvitationStatus.SENT, 3, None)
    assert len(mailbox.messages) == 1


def test_smtp_down_gives_up_after_max_attempts(make_app: Callable[..., Flask]) -> None:
    down = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port())
    with down.app_context():
        set_policy(max_attempts=2)
        invitation = close_ticket(down.test_client())
        now = due(invitation)
        assert dispatch_due(now=now).retried == 1
        assert dispatch_due(now=now + retry_delay(1)).failed == 1
        failed = refreshed(invitation)
        assert (failed.status, failed.attempts) == (InvitationStatus.FAILED, 2)
        assert failed.last_error.startswith("SMTP:")
        assert dispatch_due(now=now + timedelta(days=1)) == DispatchReport()


# --- idempotency and concurrency ---------------------------------------------------------------


def test_dispatching_twice_mails_once(client, mailbox) -> None:
    invitation = close_ticket(client)
    now = due(invitation)

    assert dispatch_due(now=now).sent == 1
    assert dispatch_due(now=now) == DispatchReport()
    assert dispatch_due(now=now + timedelta(minutes=30)) == DispatchReport()
    assert len(mailbox.messages) == 1


@pytest.mark.real_db
def test_two_concurrent_dispatchers_mail_each_customer_once(survey_app: Flask, client, mailbox):
    # Every customer has two tickets closed at the same moment, so their invitations
    # are due together and next to each other: while one dispatcher sends the first,
    # the other decides the second, and the fatigue cap must still hold.
    start = utcnow() - timedelta(hours=3)
    invitations = []
    for n in range(10):
        closed = start + timedelta(minutes=n)
        for ticket in (f"T-{n}a", f"T-{n}b"):
            invitations.append(close_ticket(client, ticket, f"C-{n}", closed_at=closed))
    now = utcnow()
    db.session.commit()
    barrier = threading.Barrier(2)
    reports: list[DispatchReport] = []
    errors: list[BaseException] = []

    def dispatcher() -> None:
        try:
            with survey_app.app_context():
                barrier.wait()
                reports.append(dispatch_due(now=now))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    total = DispatchReport()
    for report in reports:
        total.add(report)
    assert (total.sent, total.skipped, total.retried, total.failed) == (10, 10, 0, 0)
    recipients = sorted(message["To"] for message in mailbox.messages)
    assert recipients == sorted(f"c-{n}@example.com" for n in range(10))
    final = statuses(*invitations)
    assert final.count((InvitationStatus.SENT, None)) == 10
    assert final.count((InvitationStatus.SKIPPED, SkipReason.FATIGUE)) == 10


# --- the e-mail ---------------------------------------------------------------------------------


def text_part(message: Any) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_part(message: Any) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


@pytest.mark.parametrize(
    ("language", "question"),
    [
        ("zh-CN", "总体而言，您对本次服务的满意程度如何？"),
        ("en", "Overall, how satisfied are you with how your request was handled?"),
    ],
)
def test_the_email_in_the_customers_language(client, mailbox, language, question) -> None:
    invitation = close_ticket(client, customer="C-5", language=language)
    dispatch_due(now=due(invitation))

    (message,) = mailbox.messages
    locale = refreshed(invitation).language
    assert message["To"] == "c-5@example.com"
    assert message["From"] == "feedback@example.com"
    with force_locale(locale):
        assert message["Subject"] == _("How did we do with request %(ticket)s?", ticket="T-1001")
    if locale == "en":
        assert message["Subject"] == "How did we do with request T-1001?"
    text, html = text_part(message), html_part(message)
    assert question in text and question in html
    assert f'lang="{locale.replace("_", "-")}"' in html

    # One link per value of the first question; each only pre-selects the answer.
    for value in range(1, 6):
        link = re.search(rf"{re.escape(PUBLIC_URL)}/s/[^\s?\"]+\?csat_overall={value}\b", text)
        assert link, f"no one-click link for {value}"
        assert f'{link.group(0)}"' in html.replace("&amp;", "&")
    one_click = path_of(link.group(0))
    page = client.get(one_click)
    assert page.status_code == 200
    assert refreshed(invitation).status is InvitationStatus.SENT
    assert refreshed(invitation).response is None

    unsubscribe = re.fullmatch(r"<(.+)>", message["List-Unsubscribe"]).group(1)
    assert unsubscribe.startswith(PUBLIC_URL + "/s/") and unsubscribe.endswith("/unsubscribe")
    assert unsubscribe in text and unsubscribe in html
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # RFC 8058 one-click: a POST without a form token opts the customer out.
    assert client.post(path_of(unsubscribe)).status_code == 200
    assert db.session.get(Customer, refreshed(invitation).customer_id).opted_out_at is not None


# --- commands -----------------------------------------------------------------------------------


def test_dispatch_command_prints_the_counts(survey_app: Flask, client, mailbox) -> None:
    close_ticket(client, "T-1", "C-1")
    close_ticket(client, "T-2", "C-2", email=None)
    db.session.commit()

    result = survey_app.test_cli_runner().invoke(args=["surveys", "dispatch"])

    assert result.exit_code == 0, result.output
    assert "1 sent, 1 skipped, 0 to retry, 0 failed, 0 reminders." in result.output
    assert len(mailbox.messages) == 1
    again = survey_app.test_cli_runner().invoke(args=["surveys", "dispatch"])
    assert "0 sent, 0 skipped" in again.output


def test_run_command_still_works(survey_app: Flask) -> None:
    from survey_app.cli import main

    result = survey_app.test_cli_runner().invoke(main, ["run", "--help"])

    assert result.exit_code == 0, result.output
    assert "--port" in result.output
    assert "DISPATCH_INTERVAL_SECONDS" in result.output


def test_no_dispatch_thread_with_a_broker_or_interval_0(make_app: Callable[..., Flask]) -> None:
    from survey_app.cli import start_dispatch_thread

    assert start_dispatch_thread(make_app(CELERY_BROKER_URL="redis://127.0.0.1:6379/0")) is None
    assert start_dispatch_thread(make_app(DISPATCH_INTERVAL_SECONDS=0)) is None


def test_the_dispatch_thread_sends_due_invitations(
    make_app: Callable[..., Flask], smtp_server: tuple[str, int, Mailbox]
) -> None:
    from survey_app.cli import start_dispatch_thread

    host, port, mailbox = smtp_server
    app = make_app(MAIL_SERVER=host, MAIL_PORT=port, DISPATCH_INTERVAL_SECONDS=0.1)
    with app.app_context():
        close_ticket(app.test_client())
        db.session.commit()
    stop = threading.Event()
    thread = start_dispatch_thread(app, stop)
    assert thread is not None and thread.daemon
    try:
        for _ in range(100):
            if mailbox.messages:
                break
            stop.wait(0.1)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(mailbox.messages) == 1


def test_a_silent_smtp_server_fails_the_attempt_instead_of_hanging(
    make_app: Callable[..., Flask],
) -> None:
    # Accepts the connection (the kernel does, from the backlog) and never greets.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=silent.getsockname()[1],
                       MAIL_TIMEOUT=0.5)  # fmt: skip
        with app.app_context():
            invitation = close_ticket(app.test_client())
            assert dispatch_due(now=due(invitation)).retried == 1
            queued = refreshed(invitation)
            assert (queued.status, queued.attempts) == (InvitationStatus.PENDING, 1)
            assert "timed out" in queued.last_error


def test_a_message_the_server_cannot_take_never_stalls_the_others(survey_app, client, mailbox):
    """A non-ASCII address on a server without SMTPUTF8: that invitation fails, counted,
    with its reason kept for admins; the others in the same run still go out."""
    from aiosmtpd.controller import Controller

    plain = Mailbox()
    server = Controller(plain, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=False)
    server.start()
    try:
        survey_app.config["MAIL_PORT"] = server.port
        set_policy(max_attempts=2)
        bad = close_ticket(client, "T-BAD", customer="C-8", email="ｚｈａｎｇ１@example.com")
        good = close_ticket(client, "T-GOOD", customer="C-9")
        first = dispatch_due(now=due(good))
        assert (first.sent, first.retried) == (1, 1)
        assert refreshed(good).status is InvitationStatus.SENT
        failing = refreshed(bad)
        assert (failing.status, failing.attempts) == (InvitationStatus.PENDING, 1)
        assert "SMTPUTF8" in (failing.last_error or "")

        assert dispatch_due(now=due(good) + retry_delay(1)).failed == 1
        failed = refreshed(bad)
        assert (failed.status, failed.attempts) == (InvitationStatus.FAILED, 2)
        assert len(plain.raw) == 1  # the good one, once
    finally:
        server.stop()
