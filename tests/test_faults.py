"""Fault tests: SMTP down for a while, Redis unreachable, a worker killed mid-send,
PostgreSQL connections cut mid-load. Nothing is lost, nothing is sent twice.

Each test takes seconds. The worker test needs Redis (skipped without it outside
CI, like tests/test_celery_worker.py); the PostgreSQL test runs only on PostgreSQL.
Neither stops a shared service: Redis "down" is a closed port, and PostgreSQL
"restarted" is ``pg_terminate_backend`` of this test's own connections only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, func, select, text, update

from survey_app.extensions import db
from survey_app.models import Ticket
from survey_app.surveys.invitations import CLAIM_TIMEOUT, DispatchReport, dispatch_due
from survey_app.surveys.models import Invitation, InvitationStatus, SurveyResponse
from survey_app.types import utcnow
from tests import test_celery_worker as celery_worker
from tests.conftest import TEST_DATABASE_URL, Mailbox, Webhook, event_payload, is_postgres
from tests.test_celery_worker import (
    REDIS_HOST,
    REDIS_PORT,
    log_text,
    redis_reachable,
    status_of,
    wait_until,
)

#: SQL semantics: this module runs on SQLite and PostgreSQL (see docs/development.md).
pytestmark = [pytest.mark.db, pytest.mark.slow]

# The real-worker fixtures, on this module's Redis database and SMTP server (below).
broker_app = celery_worker.broker_app
queue = celery_worker.queue
start_worker = celery_worker.start_worker

#: Redis database of these tests: Celery's ``unacked`` hash is per database, so the short
#: visibility timeout of the worker test never re-queues another test's running task.
REDIS_DB = 7


def free_port() -> int:
    """A loopback port with nothing listening on it (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HoldingMailbox(Mailbox):
    """A mailbox that, when ``hold_first`` is set, keeps the first message's DATA
    unanswered (no ``250``) until ``release`` is set, then refuses it: the message
    was never accepted, as when the sending process dies mid-conversation."""

    def __init__(self) -> None:
        super().__init__()
        self.hold_first = False
        self.held = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.hold_first and not self.held.is_set():
            self.held.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 sender gone, not accepted"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, int, HoldingMailbox]]:
    """The conftest SMTP server, with a mailbox that can hold the first message."""
    from aiosmtpd.controller import Controller

    mailbox = HoldingMailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield "127.0.0.1", controller.port, mailbox
    finally:
        mailbox.release.set()
        controller.stop()


@pytest.fixture
def redis_url() -> str:
    if not redis_reachable():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Redis at {REDIS_HOST}:{REDIS_PORT} for the worker fault test")
        pytest.skip(f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT}")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"


def close_ticket(client: FlaskClient, ticket: str, customer: str = "C-1") -> Invitation:
    """Close ``ticket`` two hours ago through the signed webhook; return its invitation."""
    closed = utcnow() - timedelta(hours=2)
    opened = closed - timedelta(hours=1)
    payload = event_payload(
        ticket={"external_id": ticket, "created_at": opened.isoformat(),
                "first_response_at": opened.isoformat(), "resolved_at": closed.isoformat(),
                "closed_at": closed.isoformat()},
        customer={"external_id": customer, "email": f"{customer.lower()}@example.com",
                  "language": "en"},
    )  # fmt: skip
    response = Webhook(client).post(payload)
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    db.session.commit()
    invitation = db.session.scalars(
        select(Invitation).join(Ticket).where(Ticket.external_id == ticket)
    ).one()
    return invitation


def count(model: type) -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(model)) or 0


# --- SMTP down for a while, then back ----------------------------------------------------------


def test_smtp_down_then_back_on_the_same_port_sends_the_invitation_once(
    make_app: Callable[..., Flask],
) -> None:
    from aiosmtpd.controller import Controller

    port = free_port()
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_TIMEOUT=2)
    with app.app_context():
        invitation_id = close_ticket(app.test_client(), "T-SMTP").id
        now = utcnow()

        # Nothing listens: the attempt fails, the invitation waits with a back-off.
        assert dispatch_due(now=now).retried == 1
        waiting = db.session.get(Invitation, invitation_id)
        assert (waiting.status, waiting.attempts) == (InvitationStatus.PENDING, 1)
        assert waiting.last_error.startswith("SMTP:")
        assert waiting.send_after == now + timedelta(minutes=5)

        # The server comes back on the same address.
        mailbox = Mailbox()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            # Not yet due: the back-off is respected even though SMTP is up.
            assert dispatch_due(now=now + timedelta(minutes=4)) == DispatchReport()
            assert mailbox.messages == []
            later = now + timedelta(minutes=5)
            assert dispatch_due(now=later).sent == 1
            # Every later round (beat, cron, a second dispatcher) leaves it alone.
            assert dispatch_due(now=later + timedelta(minutes=1)) == DispatchReport()
            assert dispatch_due(now=later + timedelta(hours=1)).sent == 0
        finally:
            controller.stop()
        sent = db.session.get(Invitation, invitation_id)
        db.session.refresh(sent)
        assert (sent.status, sent.attempts, sent.last_error) == (InvitationStatus.SENT, 2, None)
    assert [m["To"] for m in mailbox.messages] == ["c-1@example.com"]


# --- Redis (the broker) unreachable ------------------------------------------------------------


def test_redis_down_submit_and_webhook_still_work_and_the_sweep_analyses_later(
    make_app: Callable[..., Flask],
    smtp_server: tuple[str, int, HoldingMailbox],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from survey_app.background import registered_jobs

    host, port, mailbox = smtp_server
    # A closed port: connections are refused at once, as when Redis is stopped.
    app = make_app(
        CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
        READINESS_TIMEOUT_SECONDS=1,
        MAIL_SERVER=host,
        MAIL_PORT=port,
    )
    client = app.test_client()
    assert not app.extensions["celery"].conf.task_always_eager

    # Load balancers keep the instance (it serves customers), the body says degraded.
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json["status"]) == (200, "degraded")
    assert ready.json["checks"]["broker"]["ok"] is False
    assert ready.json["checks"]["database"]["ok"] is True

    with app.app_context():
        # A ticket close through the webhook still records the invitation.
        invitation = close_ticket(client, "T-REDIS")
        assert invitation.status is InvitationStatus.PENDING
        # The dispatch job (run by cron / `closedloop jobs run` while beat is down) mails it.
        assert dispatch_due().sent == 1
        text_part = mailbox.messages[0].get_body(preferencelist=("plain",)).get_content()
        link = re.search(r"https?://[^/\s]+(/s/[^\s?\"]+)\s", text_part).group(1)

        page = client.get(link)
        assert page.status_code == 200
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
        answers = {"csrf_token": token.group(1), "csat_overall": "2", "nps": "3",
                   "comment": "The agent never called back."}  # fmt: skip
        with caplog.at_level(logging.WARNING, logger="analysis.tasks"):
            submitted = client.post(link, data=answers)
        assert submitted.status_code == 302, submitted.text
        warnings = [r.getMessage() for r in caplog.records if r.name == "analysis.tasks"]
        assert len(warnings) == 1
        assert "could not enqueue the analysis of response" in warnings[0]
        assert "the periodic job will do it" in warnings[0]

        response = db.session.scalars(select(SurveyResponse)).one()
        assert (response.nps, response.analysed_at) == (3, None)
        assert client.post(link, data=answers).status_code == 409
        assert count(SurveyResponse) == 1

        # The periodic sweep (beat's job, also `closedloop jobs run`) analyses it later.
        sweep = {job.name: job for job in registered_jobs(app)}["analyse-responses"]
        sweep.run()
        db.session.commit()
        db.session.expire_all()
        analysed = db.session.get(SurveyResponse, response.id)
        assert analysed.analysed_at is not None
        assert analysed.sentiment_label is not None


# --- a worker killed mid-send ------------------------------------------------------------------


def test_a_worker_killed_mid_send_never_mails_twice(
    broker_app: Flask,
    smtp_server: tuple[str, int, HoldingMailbox],
    start_worker: Callable[..., Path],
    tmp_path: Path,
) -> None:
    from survey_app.tasks import dispatch_surveys, send_invitation

    mailbox = smtp_server[2]
    mailbox.hold_first = True
    # Kombu restores an unacknowledged task once its visibility timeout has passed:
    # 2 s here (1 hour by default), looked for on every idle poll.
    transport = '{"visibility_timeout": 2, "unacked_restore_throttle": 1}'
    invitation_id = close_ticket(broker_app.test_client(), "T-KILL").id
    pidfile = tmp_path / "worker-0.pid"
    first_log = start_worker("--pidfile", str(pidfile),
                             CLOSEDLOOP_CELERY__broker_transport_options=transport)  # fmt: skip

    send_invitation.delay(invitation_id)
    # The worker has claimed the invitation and is in the middle of the SMTP DATA.
    wait_until(mailbox.held.is_set, "the worker to start sending", first_log)
    assert status_of(invitation_id) is InvitationStatus.SENDING
    os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
    wait_until(lambda: _dead(int(pidfile.read_text().strip())), "the worker to die", first_log)
    mailbox.release.set()  # the server drops the half-sent message: never accepted

    second_log = start_worker(CLOSEDLOOP_CELERY__broker_transport_options=transport)
    # acks_late: the killed worker never acknowledged the task, so it runs again...
    wait_until(
        lambda: "send_invitation" in log_text(second_log) and "succeeded" in log_text(second_log),
        "the task to run again on the new worker",
        second_log,
    )
    # ...and does nothing: the claim is younger than CLAIM_TIMEOUT, so the re-run cannot
    # tell a dead sender from a slow one and leaves the invitation alone.
    assert "'sent': 0" in log_text(second_log)
    assert status_of(invitation_id) is InvitationStatus.SENDING
    assert mailbox.messages == []

    # Once the claim is older than CLAIM_TIMEOUT the next dispatch takes it over.
    db.session.execute(
        update(Invitation)
        .where(Invitation.id == invitation_id)
        .values(claimed_at=utcnow() - CLAIM_TIMEOUT - timedelta(seconds=1))
    )
    db.session.commit()
    dispatch_surveys.delay()
    wait_until(lambda: status_of(invitation_id) is InvitationStatus.SENT, "the resend", second_log)
    wait_until(lambda: len(mailbox.messages) == 1, "the e-mail", second_log)

    # More rounds and a duplicate task, then a marker: still one message.
    dispatch_surveys.delay()
    send_invitation.delay(invitation_id)
    marker = close_ticket(broker_app.test_client(), "T-MARK", "C-2")
    send_invitation.delay(marker.id)
    wait_until(lambda: len(mailbox.messages) >= 2, "the marker e-mail", second_log)
    assert sorted(m["To"] for m in mailbox.messages) == ["c-1@example.com", "c-2@example.com"]
    invitation = db.session.get(Invitation, invitation_id)
    db.session.refresh(invitation)
    assert invitation.attempts == 1
    assert "Traceback" not in log_text(second_log)


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie until the fixture's Popen reaps it: dead all the same.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_a_crash_after_the_server_accepted_but_before_the_commit_resends_after_the_claim_timeout(
    make_app: Callable[..., Flask],
    smtp_server: tuple[str, int, HoldingMailbox],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The documented limit: delivery is at-least-once across that window (milliseconds).

    A sender that dies after the SMTP server's ``250`` and before the commit leaves the
    claim behind; after CLAIM_TIMEOUT the invitation is sent again. Before it, never.
    """
    from survey_app.surveys import invitations

    host, port, mailbox = smtp_server
    app = make_app(MAIL_SERVER=host, MAIL_PORT=port)
    with app.app_context():
        invitation_id = close_ticket(app.test_client(), "T-WINDOW").id
        now = utcnow()

        class Crash(BaseException):
            """Stands for the process dying (SIGKILL): nothing after it runs."""

        def crash(*_: object, **__: object) -> bool:
            raise Crash

        with monkeypatch.context() as patch:
            patch.setattr(invitations, "_finish", crash)
            with pytest.raises(Crash):
                dispatch_due(now=now)
        db.session.rollback()
        assert len(mailbox.messages) == 1
        assert status_of(invitation_id) is InvitationStatus.SENDING

        assert dispatch_due(now=now + CLAIM_TIMEOUT - timedelta(seconds=1)) == DispatchReport()
        assert len(mailbox.messages) == 1
        assert dispatch_due(now=now + CLAIM_TIMEOUT).sent == 1
        assert len(mailbox.messages) == 2


# --- PostgreSQL connections cut mid-load -------------------------------------------------------


@pytest.mark.skipif(not is_postgres(), reason="PostgreSQL only (SQLite has no server to lose)")
@pytest.mark.real_db
def test_postgresql_connections_cut_mid_load_requests_recover_and_nothing_is_half_written(
    make_app: Callable[..., Flask],
) -> None:
    name = f"closedloop-fault-{uuid.uuid4().hex[:12]}"
    # Only this app's connections carry this name: other test runs are never touched.
    # Errors become a 500 page as in production, instead of propagating to the test.
    app = make_app(
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"application_name": name}},
        PROPAGATE_EXCEPTIONS=False,
    )
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True
    admin = create_engine(TEST_DATABASE_URL)

    def cut() -> int:
        with admin.begin() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                ).all()
            )

    client = app.test_client()
    outcomes: list[int] = []
    stop = threading.Event()
    cuts: list[int] = []
    failures: list[str] = []

    def cutter() -> None:
        # Cut every connection a few times while requests are in flight.
        while not stop.wait(0.15):
            cuts.append(cut())

    def post(n: int) -> int:
        closed = utcnow() - timedelta(hours=2)
        opened = closed - timedelta(hours=1)
        payload = event_payload(
            ticket={"external_id": f"T-PG-{n}", "created_at": opened.isoformat(),
                    "first_response_at": opened.isoformat(), "resolved_at": closed.isoformat(),
                    "closed_at": closed.isoformat()},
            customer={"external_id": f"C-PG-{n}", "email": f"pg{n}@example.com"},
        )  # fmt: skip
        response = Webhook(client).post(payload)
        if response.status_code >= 500:
            failures.append(response.get_data(as_text=True))
        return response.status_code

    try:
        with app.app_context():
            for n in range(5):
                outcomes.append(post(n))
            assert cut() >= 1  # idle pooled connections: pool_pre_ping replaces them
            thread = threading.Thread(target=cutter, daemon=True)
            thread.start()
            retried = 0
            for n in range(5, 40):
                status = post(n)
                for _attempt in range(3):
                    if status < 500:
                        break
                    # A request whose connection died mid-transaction fails and is rolled
                    # back; the helpdesk retries the webhook (intake is idempotent). Under
                    # load the cutter can hit the retry too, so it retries a few times.
                    retried += 1
                    status = post(n)
                outcomes.append(status)
            stop.set()
            thread.join(timeout=10)
            assert sum(cuts) >= 1, "the cutter never found a connection to cut"
            assert client.get("/readyz").status_code == 200
    finally:
        stop.set()
        admin.dispose()

    assert all(status in (200, 201) for status in outcomes), outcomes
    assert retried == len(failures)
    assert not any("Traceback" in body or "AdminShutdown" in body for body in failures)
    with app.app_context():
        # Exactly one ticket and one invitation per close: nothing lost, nothing doubled,
        # no ticket without its invitation.
        tickets = db.session.scalars(select(Ticket.external_id).order_by(Ticket.id)).all()
        assert sorted(tickets) == sorted(f"T-PG-{n}" for n in range(40))
        per_ticket = db.session.execute(
            select(Ticket.external_id, func.count(Invitation.id))
            .outerjoin(Invitation, Invitation.ticket_id == Ticket.id)
            .group_by(Ticket.external_id)
        ).all()
        assert {n for _, n in per_ticket} == {1}
