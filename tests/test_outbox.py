"""The development outbox (``MAIL_BACKEND = "outbox"``) and one warning per mail-server outage."""

from __future__ import annotations

import logging
import re
import smtplib
import stat
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest
from flask import Flask
from flask_mail import Message

from survey_app import ConfigError
from survey_app.models import Role
from survey_app.outbound import (
    MailServerUnreachable,
    OutboundError,
    _is_outage,
    failure_log_level,
    send_mail,
)
from survey_app.outbox.store import list_messages, outbox_folder, read_message
from survey_app.surveys.invitations import dispatch_due
from survey_app.surveys.models import InvitationStatus
from tests.conftest import Auth, Mailbox
from tests.test_invitations import close_ticket, due, free_port, refreshed

PUBLIC_URL = "https://feedback.example.com/cl"


@pytest.fixture
def outbox_app(make_app: Callable[..., Flask]) -> Flask:
    """An app that keeps mail in the outbox; its SMTP server is a closed port (never used)."""
    return make_app(
        MAIL_BACKEND="outbox",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=free_port(),
        MAIL_DEFAULT_SENDER="feedback@example.com",
        PUBLIC_URL=PUBLIC_URL,
    )


def signed_in(app: Flask, make_user: Callable[..., object], role: Role) -> Auth:
    auth = Auth(app.test_client())
    with app.app_context():
        auth.sign_in(make_user(role))  # type: ignore[arg-type]
    return auth


def test_a_survey_invitation_is_kept_in_the_outbox_and_admins_read_it(
    outbox_app: Flask, make_user: Callable[..., object]
) -> None:
    with outbox_app.app_context():
        invitation = close_ticket(outbox_app.test_client(), customer="C-7")
        assert dispatch_due(now=due(invitation)).sent == 1
        assert refreshed(invitation).status is InvitationStatus.SENT
        (entry,), total = list_messages(limit=10)
        files = list(outbox_folder().iterdir())
    assert total == 1
    assert [f.name for f in files] == [entry.name]
    assert entry.name.endswith(".eml") and entry.to == "c-7@example.com"
    # Private: a survey link in it lets its reader answer as the customer.
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700
    # Stored as it would have gone on the wire: any mail client opens it.
    raw = files[0].read_bytes()
    assert b"List-Unsubscribe: <https://feedback.example.com/cl/" in raw

    client = signed_in(outbox_app, make_user, Role.ADMIN).client
    listing = client.get("/admin/outbox").get_data(as_text=True)
    assert entry.subject and entry.subject in unescape(listing)
    assert 'href="/admin/outbox"' in listing  # the navigation links the outbox
    page = client.get(f"/admin/outbox/{entry.name}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "c-7@example.com" in html
    survey_link = re.search(r'href="(https://feedback\.example\.com/cl/s/[^"?]+)"', html)
    assert survey_link, html
    iframe = re.search(r"<iframe [^>]*>", html)
    assert iframe
    # The HTML body is shown sandboxed (no script, not this origin), its markup escaped
    # in srcdoc so it cannot break out into the page.
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in iframe.group(0)
    srcdoc = re.search(r'srcdoc="([^"]*)"', iframe.group(0))
    assert srcdoc and "<" not in srcdoc.group(1)
    assert unescape(srcdoc.group(1)).startswith('<base target="_blank">')
    assert survey_link.group(1) in unescape(srcdoc.group(1))


def test_the_outbox_applies_the_same_header_checks(outbox_app: Flask) -> None:
    with outbox_app.app_context():
        with pytest.raises(OutboundError, match="line break"):
            send_mail(Message("Survey\r\nBcc: all@example.com", ["a@example.com"], body="x"))
        assert list_messages(limit=10) == ([], 0)
        send_mail(Message("您好", ["客户@example.com"], body="正文"))
        (entry,), _total = list_messages(limit=10)
        assert (entry.subject, entry.to) == ("您好", "客户@example.com")
        message = read_message(entry.name)
    assert message is not None and message.text == "正文\n" and message.html is None


@pytest.mark.parametrize(
    ("role", "status"), [(Role.ANALYST, 403), (Role.MANAGER, 403), (Role.ADMIN, 200)]
)
def test_only_admins_read_the_outbox(
    outbox_app: Flask, make_user: Callable[..., object], role: Role, status: int
) -> None:
    with outbox_app.app_context():
        send_mail(Message("Hello", ["a@example.com"], body="x"))
        (entry,), _total = list_messages(limit=10)
    client = signed_in(outbox_app, make_user, role).client
    assert client.get("/admin/outbox").status_code == status
    assert client.get(f"/admin/outbox/{entry.name}").status_code == status
    assert ('href="/admin/outbox"' in client.get("/account").get_data(as_text=True)) is (
        role is Role.ADMIN
    )


def test_the_outbox_asks_anonymous_visitors_to_sign_in(outbox_app: Flask) -> None:
    response = outbox_app.test_client().get("/admin/outbox")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("name", ["config.py", "..%2Fconfig.py", "20261204T053300123456Z-zz.eml"])
def test_only_outbox_messages_are_opened(
    outbox_app: Flask, make_user: Callable[..., object], name: str
) -> None:
    Path(outbox_app.instance_path, "config.py").write_text("SECRET_KEY = 'x'\n")
    client = signed_in(outbox_app, make_user, Role.ADMIN).client
    assert client.get(f"/admin/outbox/{name}").status_code == 404


def test_with_smtp_there_is_no_outbox(app: Flask, client, auth, make_user) -> None:
    assert app.config["MAIL_BACKEND"] == "smtp"
    auth.sign_in(make_user(Role.ADMIN))
    assert client.get("/admin/outbox").status_code == 404
    assert 'href="/admin/outbox"' not in client.get("/account").get_data(as_text=True)


def test_an_unknown_mail_backend_is_refused(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError, match="MAIL_BACKEND must be one of smtp, outbox"):
        make_app(MAIL_BACKEND="smpt")


# --- outages -----------------------------------------------------------------------------------


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_unreachable_mail_server_is_warned_about_once_per_outage(
    make_app: Callable[..., Flask],
    smtp_server: tuple[str, int, Mailbox],
    caplog: pytest.LogCaptureFixture,
) -> None:
    host, port, mailbox = smtp_server
    down_port = free_port()
    app = make_app(MAIL_SERVER=host, MAIL_PORT=down_port, PUBLIC_URL=PUBLIC_URL)
    with app.app_context(), caplog.at_level(logging.DEBUG):
        client = app.test_client()
        invitations = [close_ticket(client, f"T-{n}", f"C-{n}") for n in range(3)]
        now = max(due(invitation) for invitation in invitations)
        # Three messages, then every later round: one warning for the whole outage.
        assert dispatch_due(now=now).retried == 3
        assert dispatch_due(now=now + timedelta(minutes=6)).retried == 3
        (warning,) = warnings(caplog)
        assert f"mail server {host}:{down_port} unreachable" in warning
        assert "not logged again until it answers" in warning
        # Each message's failure is still in the log, quietly, and on its row.
        assert sum("not delivered" in r.getMessage() for r in caplog.records) == 6
        assert refreshed(invitations[0]).last_error.startswith("SMTP:")

        caplog.clear()
        app.config["MAIL_PORT"] = port
        send_mail(Message("Back", ["a@example.com"], body="x", sender="f@example.com"))
        assert "mail server reachable again (6 send(s) failed while it was down)" in caplog.text
        assert len(mailbox.messages) == 1

        # A new outage is warned about again.
        caplog.clear()
        app.config["MAIL_PORT"] = down_port
        for _ in range(2):
            with pytest.raises(MailServerUnreachable):
                send_mail(Message("Down", ["a@example.com"], body="x", sender="f@example.com"))
        assert len(warnings(caplog)) == 1


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (ConnectionRefusedError(111, "Connection refused"), True),
        (TimeoutError("timed out"), True),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), True),
        (smtplib.SMTPConnectError(421, b"Too busy"), True),
        (smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"No such user")}), False),
        (smtplib.SMTPAuthenticationError(535, b"Bad credentials"), False),
    ],
)
def test_only_failures_to_reach_the_server_are_an_outage(
    error: BaseException, outage: bool
) -> None:
    assert _is_outage(error) is outage


def test_callers_log_an_outage_quietly_and_anything_else_as_a_warning() -> None:
    unreachable = MailServerUnreachable("SMTP: Connection refused")
    wrapped = RuntimeError("not delivered")
    wrapped.__cause__ = unreachable
    assert failure_log_level(unreachable) == failure_log_level(wrapped) == logging.DEBUG
    assert failure_log_level(OutboundError("SMTP: 550 No such user")) == logging.WARNING
